// PLACEHOLDER (issue 23): parleyctl is being written this session.
#include <cstdio>

int main() {
  std::fprintf(stderr, "parleyctl: not built yet\n");
  return 1;
}
