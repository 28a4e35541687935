// The inbox's rows between the two sides (inbox.hpp,
// runtime/core/inbox_rows.hpp): the conversation side sends each
// partition's changed rows to the partition's owner, at most one event in
// flight per partition, until acked; the owner writes those newer than
// its stored rows in one single-partition batch.

#include <spdlog/spdlog.h>

#include "actors/inbox_detail.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/core/writer_ids.hpp"
#include "runtime/store/inbox_store.hpp"

namespace parley::inbox_detail {

namespace {

/// Whose inbox rows this actor writes, for its fence id
/// (writer_ids::inbox): one inbox per node today, shard 0.
constexpr uint64_t inbox_shard = 0;

constexpr size_t max_rows = 50000;

void acked(self_ptr self, uint32_t p) {
  self->state.sending.erase(p);
  if (!self->state.dirty.empty())
    queue_flush(self);
}

/// Not acked (an error, a timeout: it may still land, and a later send of
/// the same rows is idempotent): dirty again, sent after timeouts::retry.
void unacked(self_ptr self, uint32_t p, const caf::error& err) {
  auto& st = self->state;
  auto i = st.sending.find(p);
  if (i == st.sending.end())
    return;
  spdlog::warn("inbox rows not acked partition={} rows={} error=\"{}\"", p,
               i->second.size(), to_string(err));
  if (worth_retrying(err)) {
    st.dirty.insert(i->second.begin(), i->second.end());
    queue_retry(self);
  }
  st.sending.erase(i);
}

void send_rows(self_ptr self, inbox_rows r) {
  auto p = r.partition;
  auto& st = self->state;
  if (!st.router) { // this node owns every partition: to its own side
    accept(self, std::move(r.rows), false,
           [self, p](caf::expected<uint64_t> n) {
             if (n)
               acked(self, p);
             else
               unacked(self, p, n.error());
           });
    return;
  }
  self
    ->request(st.router, timeouts::ask, caf::put_atom::value, std::move(r))
    .then([self, p](uint64_t) { acked(self, p); },
          [self, p](caf::error& err) { unacked(self, p, err); });
}

/// A batch of `rows` is no longer being written (done or failed).
void written(self_ptr self,
             const std::vector<std::pair<entry_key, inbox_entry>>& rows) {
  auto& in_flight = self->state.row_writes;
  for (auto& [k, e] : rows)
    if (auto i = in_flight.find(k); i != in_flight.end() && --i->second == 0)
      in_flight.erase(i);
}

} // namespace

void queue_flush(self_ptr self) {
  auto& st = self->state;
  if (st.flush_queued)
    return;
  st.flush_queued = true;
  if (st.flush_delay.count() == 0)
    self->send(self, caf::flush_atom::value); // after what is queued now
  else
    self->delayed_send(self, st.flush_delay, caf::flush_atom::value);
}

void queue_retry(self_ptr self) {
  auto& st = self->state;
  if (st.retry_queued)
    return;
  st.retry_queued = true;
  self->delayed_send(self, timeouts::retry, caf::timeout_atom::value);
}

void mark(self_ptr self, const entry_key& k, const inbox_entry& e) {
  auto& st = self->state;
  st.cache[k] = e;
  st.dirty.insert(k);
  queue_flush(self);
}

void flush(self_ptr self) {
  auto& st = self->state;
  st.flush_queued = false;
  std::map<uint32_t, inbox_rows> out;
  for (auto i = st.dirty.begin(); i != st.dirty.end();) {
    auto p = partition_of(placement_key::user(i->first), st.partitions);
    if (st.sending.count(p)) { // one event in flight per partition
      ++i;
      continue;
    }
    auto& r = out[p];
    r.partition = p;
    auto row = st.cache[*i];
    row.archived = row.pinned = row.muted = false; // the user side's
    r.rows.push_back(inbox_row{i->first, row});
    i = st.dirty.erase(i);
  }
  for (auto& [p, r] : out) {
    auto& keys = st.sending[p];
    for (auto& row : r.rows)
      keys.emplace_back(row.user, row.entry.conversation);
  }
  for (auto& [p, r] : out)
    send_rows(self, std::move(r));
}

void accept(self_ptr self, std::vector<inbox_row> rows, bool repair,
            done_fn done) {
  auto& st = self->state;
  if (st.writes == 0 && st.rows.size() > max_rows)
    st.rows.clear(); // nothing in flight: the store holds them all
  write_batch batch;
  std::vector<std::pair<entry_key, inbox_entry>> wrote;
  for (auto& r : rows) {
    entry_key k{r.user, r.entry.conversation};
    std::optional<inbox_entry> cur;
    bool cur_in_flight = false; // cur is accepted but maybe not written
    if (auto i = st.rows.find(k); i != st.rows.end()) {
      cur = i->second;
      cur_in_flight = st.row_writes.count(k) > 0;
    } else {
      auto stored = store::load_inbox_entry(*st.kv, k.first, k.second);
      if (!stored) {
        done(stored.error());
        return;
      }
      cur = *stored;
    }
    // The order (inbox_rows.hpp): only a newer view replaces the row; a
    // repair (recounted from the log now) also an equal one.
    if (cur && (repair ? row_newer(*cur, r.entry) : !row_newer(r.entry, *cur))) {
      // Not newer, but the row that is may still fail to be written (its
      // batch times out, its sender has stopped waiting): write it again,
      // so that this ack means the row is on disk (seed 100657).
      if (cur_in_flight) {
        store::add_inbox_entry(batch, r.user, *cur);
        wrote.emplace_back(k, *cur);
      }
      continue;
    }
    store::add_inbox_entry(batch, r.user, r.entry);
    st.rows[k] = r.entry;
    wrote.emplace_back(k, r.entry);
  }
  if (wrote.empty()) {
    done(uint64_t{0});
    return;
  }
  ++st.writes;
  for (auto& w : wrote)
    ++st.row_writes[w.first];
  auto epoch = st.epoch;
  self
    ->request(st.writer, timeouts::commit, commit_atom::value,
              writer_ids::inbox(inbox_shard), epoch, std::move(batch))
    .then(
      [self, done, wrote](uint64_t) {
        --self->state.writes;
        written(self, wrote);
        done(uint64_t{wrote.size()});
      },
      [self, done, wrote, epoch](caf::error& err) {
        auto& st = self->state;
        --st.writes;
        written(self, wrote);
        st.epoch = std::max(st.epoch, next_epoch(err, epoch));
        // Not known to be written: compare the next rows with the store
        // (unless a later batch wrote a newer one meanwhile).
        for (auto& [k, e] : wrote)
          if (auto i = st.rows.find(k); i != st.rows.end() && i->second == e)
            st.rows.erase(i);
        done(std::move(err));
      });
}

} // namespace parley::inbox_detail
