#include "runtime/store/memory_backend.hpp"

#include "runtime/core/errors.hpp"

namespace parley {

void memory_backend::apply(map& m, const write_batch& batch) {
  for (auto& op : batch.ops) {
    if (op.erase)
      m.erase(op.key);
    else
      m[op.key] = op.value;
  }
}

caf::error memory_backend::write(const write_batch& batch, bool sync) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (fail_write && fail_write(batch)) {
    ++failed_writes_;
    return caf::make_error(errc::storage_failed, "injected write failure");
  }
  apply(data_, batch);
  if (sync) {
    for (auto& b : unsynced_)
      apply(durable_, b);
    unsynced_.clear();
    apply(durable_, batch);
  } else {
    unsynced_.push_back(batch);
  }
  ++writes_;
  return caf::none;
}

uint64_t memory_backend::lose_unsynced() {
  std::lock_guard<std::mutex> guard{mtx_};
  auto lost = static_cast<uint64_t>(unsynced_.size());
  unsynced_.clear();
  data_ = durable_;
  return lost;
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
