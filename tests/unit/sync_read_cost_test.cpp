// How many messages a sync page makes the partitions read (issue 21, the
// first-sync-page bench in tools/bench/RESULTS.md): every partition asked
// for a window's messages may read up to the page's budget, so a window of
// all the user's conversations read up to 64 pages' worth for each page.

#include <doctest/doctest.h>

#include <string>

#include "runtime/core/errors.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/memory_backend.hpp"
#include "runtime/store/sync_reads.hpp"
#include "runtime/store/user_sync.hpp"

using namespace parley;

namespace {

constexpr size_t payload_bytes = 300;

/// Counts the records of at least payload_bytes that scans visit (the
/// messages: nothing else in these stores is that large).
class counting_kv : public kv_backend {
public:
  explicit counting_kv(kv_backend& kv) : kv_(kv) {
  }

  caf::error write(const write_batch& batch, bool sync) override {
    return kv_.write(batch, sync);
  }

  caf::expected<std::optional<std::string>>
  get(std::string_view key) override {
    return kv_.get(key);
  }

  caf::error scan(std::string_view from, std::string_view to,
                  const visitor& f) override {
    return kv_.scan(from, to, [&](std::string_view k, std::string_view v) {
      if (v.size() >= payload_bytes)
        ++message_reads;
      return f(k, v);
    });
  }

  caf::expected<std::optional<std::pair<std::string, std::string>>>
  last(std::string_view from, std::string_view to) override {
    return kv_.last(from, to);
  }

  size_t message_reads = 0;

private:
  kv_backend& kv_;
};

/// One page of user 7's sync, every ask answered at once from `kv`; counts
/// the steps that asked conversations' partitions and the head queries.
struct page_reader {
  size_t conv_steps = 0;
  size_t head_queries = 0;

  caf::expected<sync_page> operator()(kv_backend& kv,
                                      const sync_request& req) {
    store::user_sync job{7, req, 64};
    for (;;) {
      auto asks = job.next();
      if (job.done())
        return job.result();
      conv_steps += !asks.convs.empty();
      for (auto& r : asks.convs)
        for (auto& q : r.queries)
          head_queries += q.kind == conv_read_head;
      answer(kv, asks, job);
    }
  }

  static void answer(kv_backend& kv, store::user_sync::asks& asks,
                     store::user_sync& job) {
    for (auto& r : asks.convs) {
      auto a = store::answer_conv_reads(kv, r, 50);
      REQUIRE(a);
      job.take(std::move(*a));
    }
    for (auto& r : asks.users) {
      auto a = store::answer_user_reads(kv, r);
      REQUIRE(a);
      job.take(std::move(*a));
    }
  }
};

sync_page page_of(kv_backend& kv, const sync_request& req) {
  auto page = page_reader{}(kv, req);
  REQUIRE(page);
  return std::move(*page);
}

/// Conversations 1001..1000+n of user 7, each with `count` messages of
/// user 8 (payload_bytes each).
void chats(kv_backend& kv, std::vector<conversation_id>& convs, size_t n,
           sequence count) {
  write_batch b;
  for (conversation_id c = 1; c <= n; ++c) {
    auto conv = 1000 + c * 7919;
    convs.push_back(conv);
    store::add_member(b, conv, member{7, 1, 1, 0});
    for (sequence s = 1; s <= count; ++s) {
      stored_message m;
      m.conversation = conv;
      m.seq = s;
      m.sender_user = 8;
      m.sender_device = 1;
      m.client_message_id = "c" + std::to_string(conv) + "-"
                            + std::to_string(s);
      m.sent_at_ms = 1000 + static_cast<int64_t>(s);
      m.kind = 1;
      m.payload = std::string(payload_bytes, 'p');
      store::add_message(b, m);
    }
  }
  REQUIRE_FALSE(kv.write(b, true));
}

} // namespace

TEST_CASE("a sync page reads a few pages' worth of messages, not one per "
          "partition") {
  // User 7 in 200 conversations of 20 messages each (4,000), all synced
  // from sequence 0 in pages of 100.
  memory_backend mem;
  std::vector<conversation_id> convs;
  chats(mem, convs, 200, 20);
  counting_kv kv{mem};
  sync_request req;
  for (auto conv : convs) {
    req.cursor_conversations.push_back(conv);
    req.cursor_sequences.push_back(0);
  }
  size_t sent = 0, pages = 0, most = 0;
  for (; pages < 100; ++pages) {
    kv.message_reads = 0;
    auto page = page_of(kv, req);
    sent += page.messages.size();
    // The first page also reads the unread messages of the whole inbox to
    // count them; the others read only for their messages.
    if (pages > 0)
      most = std::max(most, kv.message_reads);
    if (page.continuation.empty())
      break;
    req = sync_request{};
    req.continuation = page.continuation;
  }
  CHECK(sent == 4000);
  CAPTURE(pages);
  // Windows of 4, then 8 conversations of 20: 240 for a page of 100.
  // With one window of every conversation: thousands (each of up to 64
  // partitions reads up to 100).
  CHECK(most <= 300);
}

TEST_CASE("a first page that lists the inbox checks its cursors against the "
          "heads its probes read") {
  memory_backend kv;
  std::vector<conversation_id> convs;
  chats(kv, convs, 40, 3);
  sync_request req;
  for (auto conv : convs) {
    req.cursor_conversations.push_back(conv);
    req.cursor_sequences.push_back(1);
  }
  page_reader reader;
  auto page = reader(kv, req);
  REQUIRE(page);
  CHECK(page->messages.size() == 80);
  // No step of head reads of its own (it was one request per partition
  // of the cursors' conversations, before the inbox's rows).
  CHECK(reader.head_queries == 0);
  SUBCASE("a cursor past its head still fails the page") {
    req.cursor_sequences.back() = 4;
    page_reader again;
    auto err = again(kv, req);
    REQUIRE_FALSE(err);
    CHECK(is(err.error(), errc::cursor_ahead));
  }
  SUBCASE("so does a conversation of others") {
    req.cursor_conversations.push_back(5);
    req.cursor_sequences.push_back(0);
    page_reader again;
    auto err = again(kv, req);
    REQUIRE_FALSE(err);
    CHECK(is(err.error(), errc::forbidden));
  }
  SUBCASE("cursors only: the heads are read first, as before") {
    req.cursors_only = true;
    page_reader again;
    REQUIRE(again(kv, req));
    CHECK(again.head_queries == 40);
  }
}
