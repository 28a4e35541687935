// The values a cluster keeps in etcd (runtime/cluster_member_detail.hpp):
// a node's registration and the partition map as JSON, parsed strictly
// (they come from outside the process: malformed, truncated or oversized
// values are refused).

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "runtime/cluster_member_detail.hpp"

namespace parley {

namespace {

namespace pb = google::protobuf;

std::optional<pb::Struct> parse_object(const std::string& json) {
  pb::Struct obj;
  if (json.size() > 1 << 20
      || !pb::util::JsonStringToMessage(json, &obj).ok())
    return std::nullopt;
  return obj;
}

/// A whole number field of `obj` in [lo, hi], or nullopt.
std::optional<uint64_t> whole(const pb::Struct& obj, const char* name,
                              double lo, double hi) {
  auto i = obj.fields().find(name);
  if (i == obj.fields().end() || !i->second.has_number_value())
    return std::nullopt;
  auto x = i->second.number_value();
  if (!(x >= lo && x <= hi) || x != static_cast<double>(uint64_t(x)))
    return std::nullopt;
  return static_cast<uint64_t>(x);
}

} // namespace

std::optional<node_registration> parse_registration(const std::string& json) {
  auto obj = parse_object(json);
  if (!obj)
    return std::nullopt;
  auto id = whole(*obj, "node", 1, 65535);
  auto port = whole(*obj, "port", 1, 65535);
  auto host = obj->fields().find("host");
  auto inc = obj->fields().find("incarnation");
  if (!id || !port || host == obj->fields().end()
      || !host->second.has_string_value() || inc == obj->fields().end()
      || !inc->second.has_string_value())
    return std::nullopt;
  return node_registration{*id,
                           {host->second.string_value(),
                            static_cast<uint16_t>(*port)},
                           inc->second.string_value()};
}

std::string registration_json(const node_registration& r) {
  return "{\"node\":" + std::to_string(r.node) + ",\"host\":"
         + json_quote(r.at.host) + ",\"port\":" + std::to_string(r.at.port)
         + ",\"incarnation\":" + json_quote(r.incarnation) + "}";
}

std::string map_json(const partition_map& m) {
  std::string out = "{\"map_epoch\":" + std::to_string(m.map_epoch)
                    + ",\"partitions\":" + std::to_string(m.partitions())
                    + ",\"owners\":[";
  for (size_t p = 0; p < m.owners.size(); ++p)
    out += (p ? "," : "") + std::to_string(m.owners[p]);
  return out + "]}";
}

std::optional<partition_map> parse_map(const std::string& json) {
  auto obj = parse_object(json);
  if (!obj)
    return std::nullopt;
  auto epoch = whole(*obj, "map_epoch", 1, 9e15);
  auto count = whole(*obj, "partitions", 1, max_partitions);
  auto owners = obj->fields().find("owners");
  if (!epoch || !count || owners == obj->fields().end()
      || !owners->second.has_list_value())
    return std::nullopt;
  auto& list = owners->second.list_value().values();
  if (static_cast<uint64_t>(list.size()) != *count)
    return std::nullopt;
  partition_map m;
  m.map_epoch = *epoch;
  for (auto& v : list) {
    if (!v.has_number_value())
      return std::nullopt;
    auto x = v.number_value();
    // 0: nobody, a partition between a move's fence and its switch.
    if (!(x >= 0 && x <= 65535) || x != static_cast<double>(uint64_t(x)))
      return std::nullopt;
    m.owners.push_back(static_cast<node_id>(x));
  }
  return m;
}

} // namespace parley
