#include "runtime/store/memory_backend.hpp"

#include "runtime/core/errors.hpp"

namespace parley {

caf::error memory_backend::write(const write_batch& batch, bool) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (fail_write && fail_write(batch)) {
    ++failed_writes_;
    return caf::make_error(errc::storage_failed, "injected write failure");
  }
  for (auto& op : batch.ops) {
    if (op.erase)
      data_.erase(op.key);
    else
      data_[op.key] = op.value;
  }
  ++writes_;
  return caf::none;
}

caf::expected<std::optional<std::string>>
memory_backend::get(std::string_view key) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = data_.find(key);
  if (i == data_.end())
    return std::optional<std::string>{};
  return std::optional<std::string>{i->second};
}

caf::error memory_backend::scan(std::string_view from, std::string_view to,
                                const visitor& f) {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto i = data_.lower_bound(from); i != data_.end(); ++i) {
    if (!to.empty() && std::string_view{i->first} >= to)
      break;
    if (!f(i->first, i->second))
      break;
  }
  return caf::none;
}

caf::expected<std::optional<std::pair<std::string, std::string>>>
memory_backend::last(std::string_view from, std::string_view to) {
  using result = std::optional<std::pair<std::string, std::string>>;
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = to.empty() ? data_.end() : data_.lower_bound(to);
  if (i == data_.begin())
    return result{};
  --i;
  if (std::string_view{i->first} < from)
    return result{};
  return result{*i};
}

uint64_t memory_backend::writes() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return writes_;
}

uint64_t memory_backend::failed_writes() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return failed_writes_;
}

} // namespace parley
