#include "runtime/admin/command_table.hpp"

// PLACEHOLDER (issue 23, being written this session).
