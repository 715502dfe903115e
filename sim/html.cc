#include "sim/html.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace amaters::sim {
namespace {

// Bounds on what goes into the page (docs/design.md §4.4): beyond them items are counted, not kept.
constexpr size_t kMessagesMax = 300000;
constexpr size_t kOpsMax = 200000;
constexpr size_t kEventsMax = 20000;
constexpr size_t kMessageTextBytesMax = 240;  // one message description (App payloads are long)
constexpr size_t kShortTextBytesMax = 600;    // marks, operations, event texts in the data
constexpr size_t kEventTextBytesMax = 20000;  // one row of the event table (a FAIL explanation)
constexpr int kDensityBuckets = 240;

// Overview geometry (pixels).
constexpr int kOvWidth = 1200;
constexpr int kOvLeft = 70;
constexpr int kOvRight = 10;
constexpr int kOvAxisH = 18;
constexpr int kOvNetY = 22;
constexpr int kOvNetH = 16;
constexpr int kOvLane0 = 44;
constexpr int kOvLaneH = 26;
constexpr int kOvLaneGap = 4;
constexpr int kOvClientsH = 16;

// Message flags (shared with the script).
constexpr int kBlocked = 1;     // sent over a link blocked by a partition or block: never delivered
constexpr int kDuplicate = 2;   // a second delivery of one send (network duplication)
constexpr int kToDownNode = 4;  // delivered to a node that was down: dropped
constexpr int kHeld = 8;        // delivered to a paused node: buffered until it resumes
constexpr int kExact = 16;      // paired with its send by message id, not by heuristic
constexpr int kDropped = 32;    // a `drop` line said the network lost it

// --- Text safety ------------------------------------------------------------------------------

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// Valid UTF-8 with invalid bytes and control characters (but \n and \t) replaced by U+FFFD,
// so that every later escaper only has to deal with ASCII specials.
std::string CleanUtf8(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
        out += kReplacement;
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    }
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) {
        ok = false;
      } else {
        cp = (cp << 6) | (cc & 0x3F);
      }
    }
    if (ok && len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ok = false;
    if (ok && len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ok = false;
    if (ok && cp >= 0x80 && cp <= 0x9F) ok = false;  // C1 controls
    if (!ok) {
      out += kReplacement;
      ++i;
      continue;
    }
    out.append(s.data() + i, len);
    i += len;
  }
  return out;
}

// Cuts clean UTF-8 to at most `max` bytes (plus a note) on a character boundary.
std::string Truncate(const std::string& clean, size_t max) {
  if (clean.size() <= max) return clean;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(clean[cut]) & 0xC0) == 0x80) --cut;
  return absl::StrCat(clean.substr(0, cut), "\xE2\x80\xA6 (+", clean.size() - cut, " bytes)");
}

// HTML text and attribute values (double- or single-quoted).
std::string Html(absl::string_view raw) {
  const std::string s = CleanUtf8(raw);
  std::string out;
  out.reserve(s.size() + 16);
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// A JSON string literal that is also safe inside an HTML <script> element: no '<' (so never
// "</script" or "<!--"), no '>' or '&', and no U+2028/U+2029.
std::string Json(absl::string_view raw) {
  const std::string s = CleanUtf8(raw);
  std::string out = "\"";
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '<': out += "\\u003c"; break;
      case '>': out += "\\u003e"; break;
      case '&': out += "\\u0026"; break;
      default:
        if (c == '\xE2' && i + 2 < s.size() && s[i + 1] == '\x80' &&
            (s[i + 2] == '\xA8' || s[i + 2] == '\xA9')) {
          out += s[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
          i += 2;
        } else {
          out += c;
        }
    }
  }
  out += "\"";
  return out;
}

std::string Seconds(int64_t us) {
  return absl::StrFormat("%s%d.%06d", us < 0 ? "-" : "", (us < 0 ? -us : us) / 1000000,
                         (us < 0 ? -us : us) % 1000000);
}

// --- Parsing ----------------------------------------------------------------------------------

// "12.345678" -> microseconds. Only digits and one '.' are accepted.
std::optional<int64_t> ParseTime(absl::string_view tok) {
  if (tok.empty() || tok.size() > 24) return std::nullopt;
  const size_t dot = tok.find('.');
  absl::string_view whole = tok.substr(0, dot);
  absl::string_view frac = dot == absl::string_view::npos ? "" : tok.substr(dot + 1);
  if (whole.empty()) return std::nullopt;
  for (char c : whole) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  for (char c : frac) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  int64_t sec = 0;
  if (!absl::SimpleAtoi(whole, &sec) || sec > 1000000000) return std::nullopt;
  int64_t us = 0;
  for (size_t i = 0; i < 6; ++i) us = us * 10 + (i < frac.size() ? frac[i] - '0' : 0);
  return sec * 1000000 + us;
}

// "n12" -> 12.
std::optional<int> ParseNodeToken(absl::string_view tok) {
  int id = 0;
  if (!absl::ConsumePrefix(&tok, "n") || !absl::SimpleAtoi(tok, &id) || id <= 0 || id > 1000) {
    return std::nullopt;
  }
  return id;
}

// "1->2" or "n1->n2".
std::optional<std::pair<int, int>> ParseLink(absl::string_view tok) {
  const size_t arrow = tok.find("->");
  if (arrow == absl::string_view::npos) return std::nullopt;
  absl::string_view a = tok.substr(0, arrow), b = tok.substr(arrow + 2);
  absl::ConsumePrefix(&a, "n");
  absl::ConsumePrefix(&b, "n");
  int from = 0, to = 0;
  if (!absl::SimpleAtoi(a, &from) || !absl::SimpleAtoi(b, &to) || from <= 0 || to <= 0 ||
      from > 1000 || to > 1000) {
    return std::nullopt;
  }
  return std::make_pair(from, to);
}

// The number after "key=" in `s`, if any.
std::optional<int64_t> FieldNumber(absl::string_view s, absl::string_view key) {
  const std::string pat = absl::StrCat(key, "=");
  size_t at = 0;
  while ((at = s.find(pat, at)) != absl::string_view::npos) {
    if (at == 0 || s[at - 1] == ' ') {
      absl::string_view rest = s.substr(at + pat.size());
      size_t n = 0;
      while (n < rest.size() && absl::ascii_isdigit(static_cast<unsigned char>(rest[n]))) ++n;
      int64_t v = 0;
      if (n > 0 && absl::SimpleAtoi(rest.substr(0, n), &v)) return v;
    }
    at += pat.size();
  }
  return std::nullopt;
}

std::string Family(absl::string_view type) {
  if (type == "App" || type == "AppResp") return "append";
  if (type == "Heartbeat" || type == "HeartbeatResp") return "heartbeat";
  if (absl::StrContains(type, "Vote")) return "vote";
  if (absl::StartsWith(type, "ReadIndex")) return "read";
  if (type == "TimeoutNow") return "transfer";
  return "other";
}

struct Message {
  int64_t sent = 0;
  int64_t received = -1;  // -1: no delivery seen
  int64_t deadline = 0;   // heuristic pairing: a delivery after this is not this send's
  int from = 0;
  int to = 0;
  int type = 0;
  int flags = 0;
  std::string text;  // clean, truncated
};

struct Span {
  int lane = 0;  // node id; 0: the network row
  int64_t start = 0;
  int64_t end = -1;  // -1 while open
  std::string kind;  // down, refused, paused, slowdisk, diskfull, leader, net
  std::string label;
  int64_t term = 0;       // leader spans
  int64_t last_sent = -1;  // leader spans: last App/Heartbeat/TimeoutNow sent in the term
};

struct Mark {
  int lane = 0;  // node id; 0: the whole cluster
  int64_t t = 0;
  std::string kind;
  std::string text;
};

struct Op {
  int client = 0;
  int64_t invoke = 0;
  int64_t complete = -1;  // -1: unknown
  std::string kind;       // put, get, delete, cas
  std::string result;     // ok, read, succeeded, failed, unknown, notapplied
  std::string text;
};

struct Event {
  int64_t t = 0;
  int lane = 0;
  std::string kind;
  std::string text;
};

struct Model {
  std::string config;
  int nodes = 0;  // highest node id seen
  int64_t t_first = -1;
  int64_t t_last = 0;
  std::vector<Message> messages;
  std::vector<std::string> types;
  std::vector<Span> spans;
  std::vector<Mark> marks;
  std::vector<Op> ops;
  std::vector<Event> events;
  std::set<int> clients;
  std::optional<size_t> fail_event;
  int64_t fail_t = -1;
  int64_t liveness_t = -1;  // "heal all": the liveness phase starts
  // Counts.
  uint64_t sends = 0;
  uint64_t receives = 0;
  uint64_t receives_unpaired = 0;
  uint64_t messages_omitted = 0;
  uint64_t ops_omitted = 0;
  uint64_t events_omitted = 0;
  uint64_t unrecognized = 0;
  uint64_t leader_elections = 0;
  std::map<std::string, uint64_t> sends_by_type;
  std::map<std::string, uint64_t> faults;
  std::map<std::string, uint64_t> ops_by_result;
  bool exact_pairing = false;
  bool role_lines = false;
};

class Parser {
 public:
  void Feed(absl::string_view line) {
    if (absl::StripAsciiWhitespace(line).empty()) return;
    absl::string_view s = absl::StripLeadingAsciiWhitespace(line);
    const size_t sp = s.find(' ');
    std::optional<int64_t> t =
        sp == absl::string_view::npos ? ParseTime(s) : ParseTime(s.substr(0, sp));
    if (!t.has_value()) {
      Continue(line);
      return;
    }
    if (m_.t_first < 0) m_.t_first = *t;
    now_ = std::max(now_, *t);
    m_.t_last = std::max(m_.t_last, *t);
    Line(*t, sp == absl::string_view::npos ? "" : s.substr(sp + 1));
  }

  Model Finish() {
    for (size_t i : open_leader_) CloseLeader(i, now_, /*exact=*/false);
    open_leader_.clear();
    for (Span& s : m_.spans) {
      if (s.end < 0) s.end = m_.t_last;
    }
    if (m_.t_first < 0) m_.t_first = 0;
    std::stable_sort(m_.messages.begin(), m_.messages.end(),
                     [](const Message& a, const Message& b) { return a.sent < b.sent; });
    std::stable_sort(m_.spans.begin(), m_.spans.end(),
                     [](const Span& a, const Span& b) { return a.start < b.start; });
    return std::move(m_);
  }

 private:
  // One line with a time; `text` is what follows the time (message lines keep their indent).
  void Line(int64_t t, absl::string_view text) {
    last_event_.reset();
    last_mark_.reset();
    absl::string_view s = absl::StripLeadingAsciiWhitespace(text);
    absl::string_view rest = s;
    if (absl::ConsumePrefix(&rest, "send ") && Send(t, rest)) return;
    rest = s;
    if (absl::ConsumePrefix(&rest, "recv ") && Receive(t, rest)) return;
    rest = s;
    if (absl::ConsumePrefix(&rest, "drop ") && Drop(rest)) return;
    rest = s;
    if (absl::ConsumePrefix(&rest, "client ") && Client(t, rest)) return;
    rest = s;
    if (absl::ConsumePrefix(&rest, "FAIL")) {
      if (m_.fail_t < 0) m_.fail_t = t;
      AddMark(0, t, "fail", s);
      AddEvent(t, 0, "fail", s);
      if (m_.events.size() > 0 && last_event_.has_value() && !m_.fail_event.has_value()) {
        m_.fail_event = *last_event_;
      }
      return;
    }
    if (absl::StartsWith(s, "config ")) {
      if (m_.config.empty()) m_.config = std::string(s.substr(7));
      if (std::optional<int64_t> n = FieldNumber(s, "nodes"); n && *n > 0 && *n <= 1000) {
        config_nodes_ = static_cast<int>(*n);
        m_.nodes = std::max(m_.nodes, config_nodes_);
      }
      ParseLatency(s);
      AddEvent(t, 0, "config", s);
      return;
    }
    if (absl::StartsWith(s, "scenario ")) {  // a scenario script's step (sim/scenario.h)
      AddMark(0, t, "scenario", s);
      AddEvent(t, 0, "scenario", s);
      return;
    }
    rest = s;
    if (absl::ConsumePrefix(&rest, "transfer ")) {
      if (std::optional<std::pair<int, int>> link = ParseLink(rest)) {
        SeeNode(link->first);
        SeeNode(link->second);
        AddMark(link->first, t, "transfer", s);
        AddEvent(t, link->first, "transfer", s);
        return;
      }
    }
    if (Network(t, s) || NodeFault(t, s) || NodeLine(t, s)) return;
    ++m_.unrecognized;
    AddMark(0, t, "other", s);
    AddEvent(t, 0, "other", s);
  }

  // A line without a time continues the previous event (a FAIL explanation, say).
  void Continue(absl::string_view line) {
    if (last_event_.has_value() && *last_event_ < m_.events.size()) {
      std::string& text = m_.events[*last_event_].text;
      if (text.size() < kEventTextBytesMax) absl::StrAppend(&text, "\n", line);
      if (last_mark_.has_value()) {
        std::string& mt = m_.marks[*last_mark_].text;
        if (mt.size() < kShortTextBytesMax) absl::StrAppend(&mt, "\n", line);
      }
      return;
    }
    ++m_.unrecognized;
    AddEvent(now_, 0, "other", line);
  }

  void ParseLatency(absl::string_view s) {
    // "latency=176-18817us": a duplicate may arrive up to 4 x the maximum after the send.
    const size_t at = s.find("latency=");
    if (at == absl::string_view::npos) return;
    absl::string_view v = s.substr(at + 8);
    const size_t dash = v.find('-'), us = v.find("us");
    int64_t hi = 0;
    if (dash != absl::string_view::npos && us != absl::string_view::npos && us > dash &&
        absl::SimpleAtoi(v.substr(dash + 1, us - dash - 1), &hi) && hi > 0) {
      latency_max_us_ = hi;
    }
  }

  void SeeNode(int id) { m_.nodes = std::max(m_.nodes, id); }

  void AddEvent(int64_t t, int lane, absl::string_view kind, absl::string_view text) {
    if (m_.events.size() >= kEventsMax) {
      ++m_.events_omitted;
      last_event_.reset();
      return;
    }
    m_.events.push_back(Event{t, lane, std::string(kind), std::string(text)});
    last_event_ = m_.events.size() - 1;
  }

  void AddMark(int lane, int64_t t, absl::string_view kind, absl::string_view text) {
    m_.marks.push_back(Mark{lane, t, std::string(kind), std::string(text)});
    last_mark_ = m_.marks.size() - 1;
  }

  size_t OpenSpan(int lane, int64_t t, absl::string_view kind, absl::string_view label) {
    Span s;
    s.lane = lane;
    s.start = t;
    s.kind = std::string(kind);
    s.label = std::string(label);
    m_.spans.push_back(std::move(s));
    return m_.spans.size() - 1;
  }

  // Closes the open span of `kind` on node `id`, if any.
  void CloseSpan(std::map<int, size_t>* open, int id, int64_t t) {
    auto it = open->find(id);
    if (it == open->end()) return;
    m_.spans[it->second].end = t;
    open->erase(it);
  }

  // A leader span ends exactly at a crash or a role line; otherwise (the trace has no step-down
  // line) at the last message the node sent as leader of that term.
  void CloseLeader(size_t span, int64_t t, bool exact) {
    Span& s = m_.spans[span];
    if (exact || m_.role_lines) {
      s.end = t;
    } else {
      s.end = std::max(s.start, s.last_sent);
      s.label += " (end inferred from its last App/Heartbeat)";
    }
  }

  void CloseLeaderOf(int id, int64_t t, bool exact) {
    for (auto it = open_leader_.begin(); it != open_leader_.end();) {
      if (m_.spans[*it].lane == id) {
        CloseLeader(*it, t, exact);
        it = open_leader_.erase(it);
      } else {
        ++it;
      }
    }
  }

  int TypeIndex(absl::string_view name) {
    auto it = type_index_.find(std::string(name));
    if (it != type_index_.end()) return it->second;
    const int i = static_cast<int>(m_.types.size());
    m_.types.push_back(std::string(name));
    type_index_.emplace(std::string(name), i);
    return i;
  }

  // "send [#id] 2->1 App term=3 ...".
  bool Send(int64_t t, absl::string_view s) {
    std::optional<uint64_t> id = MessageId(&s);
    std::vector<absl::string_view> tok = absl::StrSplit(s, absl::MaxSplits(' ', 2));
    if (tok.size() < 2) return false;
    std::optional<std::pair<int, int>> link = ParseLink(tok[0]);
    if (!link) return false;
    SeeNode(link->first);
    SeeNode(link->second);
    ++m_.sends;
    ++m_.sends_by_type[std::string(tok[1])];
    const std::optional<int64_t> term = FieldNumber(s, "term");
    const std::string family = Family(tok[1]);
    if (term && (family == "append" || tok[1] == "Heartbeat" || tok[1] == "TimeoutNow") &&
        tok[1] != "AppResp") {
      for (size_t i : open_leader_) {
        Span& sp = m_.spans[i];
        if (sp.lane == link->first && sp.term == *term) sp.last_sent = t;
      }
    }
    if (m_.messages.size() >= kMessagesMax) {
      ++m_.messages_omitted;
      return true;
    }
    Message msg;
    msg.sent = t;
    msg.from = link->first;
    msg.to = link->second;
    msg.type = TypeIndex(tok[1]);
    msg.text = Truncate(CleanUtf8(s), kMessageTextBytesMax);
    int64_t clog_us = 0;
    if (auto c = clogged_.find(*link); c != clogged_.end()) clog_us = c->second;
    msg.deadline = t + 4 * latency_max_us_ + clog_us + 1000;
    const size_t index = m_.messages.size();
    if (blocked_.count(*link)) msg.flags |= kBlocked;
    if (id.has_value()) {
      msg.flags |= kExact;
      by_id_[*id] = index;
      m_.exact_pairing = true;
    } else if (!(msg.flags & kBlocked)) {
      unpaired_[{link->first, link->second, msg.type}].push_back(index);
    }
    m_.messages.push_back(std::move(msg));
    return true;
  }

  // An optional "#123" before the link: lines that carry a message id pair exactly.
  static std::optional<uint64_t> MessageId(absl::string_view* s) {
    if (!absl::StartsWith(*s, "#")) return std::nullopt;
    const size_t sp = s->find(' ');
    uint64_t id = 0;
    if (sp == absl::string_view::npos || !absl::SimpleAtoi(s->substr(1, sp - 1), &id)) {
      return std::nullopt;
    }
    s->remove_prefix(sp + 1);
    return id;
  }

  // "recv [#id] 2->1 App[ (dropped: down)| (held: paused)]".
  bool Receive(int64_t t, absl::string_view s) {
    std::optional<uint64_t> id = MessageId(&s);
    std::vector<absl::string_view> tok = absl::StrSplit(s, absl::MaxSplits(' ', 2));
    if (tok.size() < 2) return false;
    std::optional<std::pair<int, int>> link = ParseLink(tok[0]);
    if (!link) return false;
    ++m_.receives;
    int flags = 0;
    if (absl::StrContains(s, "(dropped: down)")) flags |= kToDownNode;
    if (absl::StrContains(s, "(held: paused)")) flags |= kHeld;
    std::optional<size_t> match;
    if (id.has_value()) {
      auto it = by_id_.find(*id);
      if (it != by_id_.end()) match = it->second;
    } else {
      const int type = TypeIndex(tok[1]);
      std::deque<size_t>& q = unpaired_[{link->first, link->second, type}];
      while (!q.empty() && m_.messages[q.front()].deadline < t) q.pop_front();  // lost
      if (!q.empty()) {
        match = q.front();
        q.pop_front();
        last_paired_[{link->first, link->second, type}] = *match;
      } else if (auto lp = last_paired_.find({link->first, link->second, type});
                 lp != last_paired_.end() && m_.messages[lp->second].deadline >= t) {
        match = lp->second;  // a duplicate of the last one delivered
      }
    }
    if (!match.has_value()) {
      ++m_.receives_unpaired;
      return true;
    }
    Message& msg = m_.messages[*match];
    if (msg.received < 0) {
      msg.received = t;
      msg.flags |= flags;
      return true;
    }
    if (m_.messages.size() >= kMessagesMax) {
      ++m_.messages_omitted;
      return true;
    }
    Message dup = msg;
    dup.received = t;
    dup.flags = (msg.flags & (kExact | kBlocked)) | flags | kDuplicate;
    m_.messages.push_back(std::move(dup));
    return true;
  }

  // "drop #id <reason>" (proposed): the network lost the message.
  bool Drop(absl::string_view s) {
    std::optional<uint64_t> id = MessageId(&s);
    if (!id.has_value()) return false;
    auto it = by_id_.find(*id);
    if (it != by_id_.end()) m_.messages[it->second].flags |= kDropped;
    return true;
  }

  // "client client 3 put("k", "v") -> ok [invoke 330000000, complete 359700149]" (times in ns;
  // "complete ?" for an unknown outcome).
  bool Client(int64_t t, absl::string_view s) {
    absl::string_view rest = s;
    if (!absl::ConsumePrefix(&rest, "client ")) return false;
    const size_t sp = rest.find(' ');
    int client = 0;
    if (sp == absl::string_view::npos || !absl::SimpleAtoi(rest.substr(0, sp), &client) ||
        client < 0 || client > 100000) {
      return false;
    }
    absl::string_view body = rest.substr(sp + 1);
    const size_t paren = body.find('(');
    const size_t bracket = body.rfind(" [invoke ");
    if (paren == absl::string_view::npos || bracket == absl::string_view::npos) return false;
    const size_t arrow = body.rfind(" -> ", bracket);
    if (arrow == absl::string_view::npos || arrow < paren) return false;
    absl::string_view times = body.substr(bracket + 9);
    absl::ConsumeSuffix(&times, "]");
    std::vector<absl::string_view> parts = absl::StrSplit(times, ", complete ");
    int64_t invoke_ns = 0, complete_ns = -1;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &invoke_ns)) return false;
    if (parts[1] != "?" && !absl::SimpleAtoi(parts[1], &complete_ns)) return false;
    const std::string kind(body.substr(0, paren));
    absl::string_view res = body.substr(arrow + 4, bracket - arrow - 4);
    std::string result = "read";
    if (res == "ok") {
      result = "ok";
    } else if (res == "succeeded") {
      result = "succeeded";
    } else if (res == "failed") {
      result = "failed";
    } else if (absl::StartsWith(res, "unknown")) {
      result = "unknown";
    } else if (absl::StartsWith(res, "failed, not applied")) {
      result = "notapplied";
    }
    ++m_.ops_by_result[absl::StrCat(kind, " ", result)];
    m_.clients.insert(client);
    if (m_.ops.size() >= kOpsMax) {
      ++m_.ops_omitted;
      return true;
    }
    Op op;
    op.client = client;
    op.invoke = invoke_ns / 1000;
    op.complete = complete_ns < 0 ? -1 : complete_ns / 1000;
    if (op.complete < 0 && result != "unknown") op.complete = t;
    op.kind = kind;
    op.result = result;
    op.text = Truncate(CleanUtf8(s), kShortTextBytesMax);
    m_.t_last = std::max(m_.t_last, op.complete);
    m_.ops.push_back(std::move(op));
    return true;
  }

  std::string NetworkLabel() const {
    std::vector<std::string> parts;
    if (!partition_.empty()) parts.push_back(absl::StrCat("partition", partition_));
    for (const std::string& b : block_descs_) parts.push_back(absl::StrCat("block ", b));
    for (const auto& [link, us] : clogged_) {
      parts.push_back(absl::StrCat("clog ", link.first, "->", link.second, " +", us / 1000, "ms"));
    }
    return absl::StrJoin(parts, ", ");
  }

  void NetworkChanged(int64_t t) {
    if (open_net_.has_value()) {
      m_.spans[*open_net_].end = t;
      open_net_.reset();
    }
    const std::string label = NetworkLabel();
    if (!label.empty()) open_net_ = OpenSpan(0, t, "net", label);
  }

  bool Network(int64_t t, absl::string_view s) {
    absl::string_view rest = s;
    if (s == "heal network" || s == "heal all") {
      blocked_.clear();
      clogged_.clear();
      partition_.clear();
      block_descs_.clear();
      NetworkChanged(t);
      if (s == "heal all") {
        // Healing everything also resets disks without a line of its own.
        for (auto* open : {&slow_disk_, &disk_full_}) {
          for (const auto& [id, span] : *open) m_.spans[span].end = t;
          open->clear();
        }
        if (m_.liveness_t < 0) m_.liveness_t = t;
        ++m_.faults["heal all"];
        AddMark(0, t, "healall", s);
        AddEvent(t, 0, "healall", s);
      } else {
        ++m_.faults["heal network"];
        AddMark(0, t, "heal", s);
        AddEvent(t, 0, "heal", s);
      }
      return true;
    }
    if (absl::ConsumePrefix(&rest, "partition")) {
      // " {1,2} {3}": nodes not listed are isolated (Simulation::Partition).
      std::map<int, int> group_of;
      int group = 0;
      for (absl::string_view g : absl::StrSplit(rest, '{', absl::SkipEmpty())) {
        g = absl::StripAsciiWhitespace(g);
        absl::ConsumeSuffix(&g, "}");
        for (absl::string_view id : absl::StrSplit(g, ',', absl::SkipEmpty())) {
          int n = 0;
          id = absl::StripAsciiWhitespace(id);
          absl::ConsumePrefix(&id, "n");
          if (!absl::SimpleAtoi(id, &n) || n <= 0 || n > 1000) return false;
          group_of[n] = group;
          SeeNode(n);
        }
        ++group;
      }
      blocked_.clear();
      block_descs_.clear();
      for (int a = 1; a <= m_.nodes; ++a) {
        for (int b = 1; b <= m_.nodes; ++b) {
          if (a == b) continue;
          auto ga = group_of.find(a), gb = group_of.find(b);
          if (ga == group_of.end() || gb == group_of.end() || ga->second != gb->second) {
            blocked_.insert({a, b});
          }
        }
      }
      partition_ = blocked_.empty() ? "" : std::string(rest);
      ++m_.faults["partition"];
      NetworkChanged(t);
      AddMark(0, t, "partition", s);
      AddEvent(t, 0, "partition", s);
      return true;
    }
    if (absl::ConsumePrefix(&rest, "block ")) {
      std::optional<std::pair<int, int>> link = ParseLink(rest);
      if (!link) return false;
      blocked_.insert(*link);
      block_descs_.push_back(absl::StrCat(link->first, "->", link->second));
      ++m_.faults["block"];
      NetworkChanged(t);
      AddMark(link->first, t, "block", s);
      AddEvent(t, link->first, "block", s);
      return true;
    }
    if (absl::ConsumePrefix(&rest, "clog ")) {
      std::vector<absl::string_view> tok = absl::StrSplit(rest, ' ');
      std::optional<std::pair<int, int>> link = ParseLink(tok[0]);
      if (!link) return false;
      int64_t ms = 0;
      if (tok.size() >= 2) {
        absl::string_view v = tok[1];
        absl::ConsumePrefix(&v, "+");
        absl::ConsumeSuffix(&v, "ms");
        if (!absl::SimpleAtoi(v, &ms)) ms = 0;
      }
      clogged_[*link] = ms * 1000;
      ++m_.faults["clog"];
      NetworkChanged(t);
      AddMark(link->first, t, "clog", s);
      AddEvent(t, link->first, "clog", s);
      return true;
    }
    return false;
  }

  // "<verb> n<id>[ more]" faults.
  bool NodeFault(int64_t t, absl::string_view s) {
    static const char* const kVerbs[] = {"crash",     "restart",     "pause",      "resume",
                                         "slow disk", "normal disk", "disk full",  "disk space",
                                         "corrupt",   "campaign"};
    for (const char* verb : kVerbs) {
      absl::string_view rest = s;
      if (!absl::ConsumePrefix(&rest, verb) || !absl::ConsumePrefix(&rest, " ")) continue;
      const size_t sp = rest.find(' ');
      std::optional<int> id = ParseNodeToken(rest.substr(0, sp));
      if (!id) return false;
      SeeNode(*id);
      const std::string v = verb;
      std::string kind = v;
      if (v == "crash") {
        CloseLeaderOf(*id, t, /*exact=*/true);
        CloseSpan(&paused_, *id, t);
        if (!down_.count(*id) && !refused_.count(*id)) down_[*id] = OpenSpan(*id, t, "down", "down");
      } else if (v == "pause") {
        if (!paused_.count(*id)) paused_[*id] = OpenSpan(*id, t, "paused", "paused");
      } else if (v == "resume") {
        CloseSpan(&paused_, *id, t);
      } else if (v == "slow disk") {
        kind = "slowdisk";
        if (!slow_disk_.count(*id)) slow_disk_[*id] = OpenSpan(*id, t, "slowdisk", "slow disk");
      } else if (v == "normal disk") {
        kind = "normaldisk";
        CloseSpan(&slow_disk_, *id, t);
      } else if (v == "disk full") {
        kind = "diskfull";
        if (!disk_full_.count(*id)) disk_full_[*id] = OpenSpan(*id, t, "diskfull", "disk full");
      } else if (v == "disk space") {
        kind = "diskspace";
        CloseSpan(&disk_full_, *id, t);
      }
      if (v != "campaign") ++m_.faults[v];
      AddMark(*id, t, kind, s);
      AddEvent(t, *id, kind, s);
      return true;
    }
    return false;
  }

  // "n<id> <something>".
  bool NodeLine(int64_t t, absl::string_view s) {
    const size_t sp = s.find(' ');
    if (sp == absl::string_view::npos) return false;
    std::optional<int> id = ParseNodeToken(s.substr(0, sp));
    if (!id) return false;
    SeeNode(*id);
    absl::string_view rest = s.substr(sp + 1);
    std::string kind = "node";
    if (absl::StartsWith(rest, "start ") || rest == "start") {
      kind = "start";
      CloseSpan(&down_, *id, t);
      CloseSpan(&refused_, *id, t);  // a real node that stopped on a full disk starts again
    } else if (absl::ConsumePrefix(&rest, "leader term ")) {
      int64_t term = 0;
      if (!absl::SimpleAtoi(rest, &term)) return false;
      kind = "leader";
      ++m_.leader_elections;
      CloseLeaderOf(*id, t, /*exact=*/false);
      const size_t span = OpenSpan(*id, t, "leader", absl::StrCat("leader term ", term));
      m_.spans[span].term = term;
      m_.spans[span].last_sent = t;
      open_leader_.push_back(span);
    } else if (absl::StartsWith(rest, "follower term ") ||
               absl::StartsWith(rest, "candidate term ") ||
               absl::StartsWith(rest, "pre-candidate term ")) {
      // Proposed role-change lines: they end leader spans exactly.
      kind = "role";
      m_.role_lines = true;
      CloseLeaderOf(*id, t, /*exact=*/true);
    } else if (absl::StartsWith(rest, "refuses to start")) {
      kind = "refused";
      CloseSpan(&down_, *id, t);
      if (!refused_.count(*id)) {
        refused_[*id] = OpenSpan(*id, t, "refused", "refused to start (corruption detected)");
      }
    } else if (absl::StartsWith(rest, "fatal")) {
      kind = "fatal";  // the node stops (the simulator's crash line follows at the same time)
      CloseLeaderOf(*id, t, /*exact=*/true);
      if (!down_.count(*id) && !refused_.count(*id)) down_[*id] = OpenSpan(*id, t, "down", "down");
    } else if (absl::StartsWith(rest, "recovery")) {
      kind = "recovery";
    } else if (absl::StartsWith(rest, "disk error")) {
      kind = "diskerror";
    } else {
      ++m_.unrecognized;
    }
    AddMark(*id, t, kind, s);
    AddEvent(t, *id, kind, s);
    return true;
  }

  Model m_;
  int64_t now_ = 0;
  int config_nodes_ = 0;
  int64_t latency_max_us_ = 25000;
  std::optional<size_t> last_event_;
  std::optional<size_t> last_mark_;
  // Network state, replayed from the fault lines exactly as Simulation applies it.
  std::set<std::pair<int, int>> blocked_;
  std::map<std::pair<int, int>, int64_t> clogged_;  // link -> extra delay (us)
  std::string partition_;
  std::vector<std::string> block_descs_;
  std::optional<size_t> open_net_;
  // Open spans per node.
  std::map<int, size_t> down_, refused_, paused_, slow_disk_, disk_full_;
  std::vector<size_t> open_leader_;
  // Message pairing.
  std::map<std::string, int> type_index_;
  std::map<std::tuple<int, int, int>, std::deque<size_t>> unpaired_;
  std::map<std::tuple<int, int, int>, size_t> last_paired_;
  std::map<uint64_t, size_t> by_id_;
};

// --- Output -----------------------------------------------------------------------------------

constexpr char kStyle[] = R"CSS(
body{font:13px/1.35 system-ui,-apple-system,"Segoe UI",sans-serif;margin:12px 16px;color:#222}
h1{font-size:18px;margin:0 0 6px}h2{font-size:15px;margin:18px 0 6px}
pre{font:12px/1.3 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;margin:0}
.config{font:12px ui-monospace,Menlo,Consolas,monospace;color:#555;word-break:break-all}
.failbox{border:3px solid #c00;background:#fff0f0;padding:8px 10px;margin:8px 0}
.failbox b{color:#c00;font-size:16px}
.passbox{border:2px solid #2a2;background:#f0fff0;padding:6px 10px;margin:8px 0}
table.counts{border-collapse:collapse;margin:6px 0}
table.counts td{padding:1px 10px 1px 0;vertical-align:top}
table.events{border-collapse:collapse;width:100%}
table.events td{padding:1px 8px 1px 0;vertical-align:top;border-bottom:1px solid #eee}
table.events tr{cursor:pointer}table.events tr:hover{background:#eef}
table.events td.t{font:12px ui-monospace,Menlo,Consolas,monospace;white-space:nowrap}
tr.ev-fail td{background:#fdd;font-weight:bold}tr.ev-crash td,tr.ev-fatal td,tr.ev-refused td{color:#a00}
tr.ev-leader td{color:#06c}tr.ev-other td,tr.ev-node td{color:#777}
#controls{margin:4px 0;display:flex;flex-wrap:wrap;gap:6px;align-items:center}
#controls input[type=text]{width:90px}
#detail{overflow:hidden;border:1px solid #ccc;cursor:grab;user-select:none;min-height:40px}
#status{color:#555;margin:3px 0}.note{color:#a60}
.ovwrap{overflow-x:auto}
svg text{font:11px system-ui,sans-serif}
.lanebg{fill:#f7f7f7}.lanelabel{font-weight:bold}
.down{fill:url(#hatch)}.refused{fill:url(#rhatch)}.paused{fill:#f5d000;fill-opacity:.35}
.slowdisk{fill:#8c564b}.diskfull{fill:#ff7f0e}
.net{fill:#d62728;fill-opacity:.18;stroke:#d62728;stroke-opacity:.5}
.dens{fill:#9ab}.axis{stroke:#999}.tick{fill:#555}
.mk-crash{stroke:#c00;stroke-width:2}.mk-start{fill:#2a2}.mk-restart{fill:#2a2}
.mk-corrupt{fill:#7b2d8e}.mk-fatal{fill:#c00}.mk-refused{fill:#700}.mk-recovery{fill:#17becf}
.mk-diskerror{fill:#ff7f0e}.mk-campaign,.mk-transfer{fill:#9467bd}.mk-scenario{fill:#333}
tr.ev-scenario td{background:#f4f4ff}.mk-other,.mk-node,.mk-role{fill:#888}.mk-leader{fill:#06c}
.mk-partition,.mk-block,.mk-clog{fill:#d62728}.mk-heal{fill:#2a2}
.mk-pause,.mk-resume{fill:#b8a000}.mk-slowdisk,.mk-normaldisk,.mk-diskfull,.mk-diskspace{fill:#8c564b}
.failline{stroke:#c00;stroke-width:3}.healall{stroke:#2a2;stroke-width:2;stroke-dasharray:6 3}
.brush{fill:#06c;fill-opacity:.12;stroke:#06c}
.m{stroke-width:1.2;fill:none}.m-lost{stroke-dasharray:2 2}.m-blocked{stroke-dasharray:4 2;stroke:#d62728}
.f-append{stroke:#1f77b4}.f-heartbeat{stroke:#aaa}.f-vote{stroke:#ff7f0e}.f-read{stroke:#2ca02c}
.f-transfer{stroke:#9467bd}.f-other{stroke:#555}
.op{fill-opacity:.75}.op-put{fill:#1f77b4}.op-get{fill:#2ca02c}.op-delete{fill:#7f7f7f}.op-cas{fill:#9467bd}
.op-unknown{fill-opacity:.25;stroke:#c00;stroke-dasharray:2 2}.op-failed{fill-opacity:.35}
.legend span{display:inline-block;margin-right:12px}
.sw{display:inline-block;width:14px;height:9px;margin-right:3px;vertical-align:middle}
)CSS";

constexpr char kScript[] = R"JS(
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('trace-data').textContent);
  var S = 6;  // fields per message in D.m: sent, received, from, to, type, flags
  var NM = D.m.length / S;
  var F_BLOCKED = 1, F_DUP = 2, F_DOWN = 4, F_HELD = 8, F_EXACT = 16, F_DROPPED = 32;
  var MAXDRAW = 2500, MAXLINES = 400;
  var box = document.getElementById('detail');
  var statusEl = document.getElementById('status');
  var linesEl = document.getElementById('lines');
  var lane = {}, client = {};
  D.nodes.forEach(function (id, i) { lane[id] = i; });
  D.clients.forEach(function (id, i) { client[id] = i; });
  var AXIS = 18, NETY = 22, NETH = 18, LANE0 = 46, LANEH = 44, GAP = 6, CLIH = 11;
  var LEFT = 70, RIGHT = 12;
  function laneY(i) { return LANE0 + i * (LANEH + GAP); }
  var CLI0 = laneY(D.nodes.length) + 14;
  var HEIGHT = CLI0 + D.clients.length * CLIH + 8;
  var T0 = D.t0, T1 = Math.max(D.t1, D.t0 + 1), TOTAL = T1 - T0;
  // Around the failure: the last ~80 messages before it (between 20 ms and 1.5 s), and a bit after.
  function failWindow() {
    var lo = 0, hi = NM;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (D.m[mid * S] < D.fail) lo = mid + 1; else hi = mid; }
    var a = lo > 80 ? D.m[(lo - 80) * S] : T0;
    a = Math.min(Math.max(a, D.fail - 1.5e6), D.fail - 2e4);
    view.a = Math.max(T0, a); view.b = D.fail + (D.fail - view.a) * 0.15;
  }
  // First window: the URL's #t=A,B (seconds), else around the failure, else from the start
  // until about 400 messages are in view (between 20 ms and 2 s).
  var view = {a: T0, b: T0 + Math.min(TOTAL, 2e6)};
  var hm = /^#t=([0-9.]+),([0-9.]+)$/.exec(window.location.hash);
  if (hm && +hm[2] > +hm[1]) { view.a = hm[1] * 1e6; view.b = hm[2] * 1e6; }
  else if (D.fail >= 0) { failWindow(); }
  else if (NM > 400) { view.b = Math.min(T0 + 2e6, Math.max(T0 + 2e4, D.m[400 * S])); }
  if (view.b - view.a < 100) view.b = view.a + 100;
  var hidden = {};
  var FAMCOLOR = {append: '#1f77b4', heartbeat: '#aaa', vote: '#ff7f0e', read: '#2ca02c',
                  transfer: '#9467bd', other: '#555'};
  var ESC = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'};
  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return ESC[c]; }); }
  function secs(us) { return (us / 1e6).toFixed(6) + 's'; }
  function fam(type) { return D.fam[type]; }

  function setView(a, b) {
    var w = Math.min(Math.max(b - a, 50), TOTAL * 1.1 + 100);
    a = Math.max(a, T0 - w * 0.05);
    a = Math.min(a, T1 + w * 0.05 - w);
    view.a = a; view.b = a + w;
    try {
      window.history.replaceState(null, '', '#t=' + (view.a / 1e6).toFixed(6) + ',' + (view.b / 1e6).toFixed(6));
    } catch (e) { /* file: URLs in some browsers */ }
    if (!pending) { pending = true; window.requestAnimationFrame(function () { pending = false; render(); }); }
  }
  var pending = false;
  function centre(t) {
    var w = view.b - view.a;
    if (w > 5e6) w = 1e6;
    setView(t - w / 2, t + w / 2);
  }
  function firstSentAtOrAfter(t) {
    var lo = 0, hi = NM;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (D.m[mid * S] < t) lo = mid + 1; else hi = mid; }
    return lo;
  }
  function ticks(a, b, px) {
    var raw = (b - a) / Math.max(px / 110, 1);
    var p = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10)), step = 10 * p;
    [1, 2, 5].some(function (k) { if (k * p >= raw) { step = k * p; return true; } return false; });
    var dec = Math.min(6, Math.max(0, 6 - Math.floor(Math.log(step) / Math.LN10 + 1e-9)));
    var out = [];
    for (var t = Math.ceil(a / step) * step; t <= b; t += step) out.push([t, (t / 1e6).toFixed(dec) + 's']);
    return out;
  }
  function mark(kind, x, y, title) {
    var t = '<title>' + esc(title) + '</title>', c = ' class="mk-' + esc(kind) + '"';
    if (kind === 'crash') {
      return '<g' + c + '><path d="M' + (x - 4) + ' ' + (y - 4) + 'l8 8m0 -8l-8 8"/>' + t + '</g>';
    }
    if (kind === 'start' || kind === 'restart') {
      return '<path' + c + ' d="M' + x + ' ' + (y - 5) + 'l5 9h-10z">' + t + '</path>';
    }
    if (kind === 'corrupt' || kind === 'refused') {
      return '<path' + c + ' d="M' + x + ' ' + (y - 5) + 'l5 5l-5 5l-5 -5z">' + t + '</path>';
    }
    return '<circle' + c + ' cx="' + x + '" cy="' + y + '" r="3.5">' + t + '</circle>';
  }

  function render() {
    var W = Math.max(600, box.clientWidth || 1200), PW = W - LEFT - RIGHT;
    var a = view.a, b = view.b, k = PW / (b - a);
    function X(t) { return LEFT + (t - a) * k; }
    function CX(t) { return Math.max(LEFT - 2, Math.min(W - RIGHT + 2, X(t))); }
    var h = [];
    h.push('<svg xmlns="http://www.w3.org/2000/svg" width="' + W + '" height="' + HEIGHT + '">');
    h.push('<defs>');
    Object.keys(FAMCOLOR).forEach(function (f) {
      h.push('<marker id="ah-' + f + '" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" ' +
             'markerHeight="7" orient="auto"><path d="M0 0L8 4L0 8z" fill="' + FAMCOLOR[f] + '"/></marker>');
    });
    h.push('<clipPath id="plot"><rect x="' + LEFT + '" y="0" width="' + PW + '" height="' +
           HEIGHT + '"/></clipPath></defs>');
    // Axis and rows.
    h.push('<line class="axis" x1="' + LEFT + '" x2="' + (W - RIGHT) + '" y1="' + AXIS + '" y2="' + AXIS + '"/>');
    ticks(a, b, PW).forEach(function (tk) {
      var x = X(tk[0]);
      h.push('<line class="axis" x1="' + x + '" x2="' + x + '" y1="' + (AXIS - 4) + '" y2="' + HEIGHT +
             '" stroke-opacity=".25"/><text class="tick" x="' + (x + 2) + '" y="' + (AXIS - 6) + '">' +
             esc(tk[1]) + '</text>');
    });
    h.push('<rect class="lanebg" x="' + LEFT + '" y="' + NETY + '" width="' + PW + '" height="' + NETH + '"/>');
    h.push('<text x="4" y="' + (NETY + 13) + '">network</text>');
    D.nodes.forEach(function (id, i) {
      h.push('<rect class="lanebg" x="' + LEFT + '" y="' + laneY(i) + '" width="' + PW + '" height="' +
             LANEH + '"/><text class="lanelabel" x="4" y="' + (laneY(i) + 26) + '">n' + id + '</text>');
    });
    if (D.clients.length) {
      h.push('<text x="4" y="' + (CLI0 - 3) + '">clients</text>');
      D.clients.forEach(function (id, i) {
        h.push('<text x="14" y="' + (CLI0 + i * CLIH + 9) + '" style="font-size:9px">' +
               (id === 0 ? 'checker' : 'c' + id) + '</text>');
      });
    }
    h.push('<g clip-path="url(#plot)">');
    // Spans.
    D.spans.forEach(function (s) {
      var l = s[0], st = s[1], en = s[2], kind = s[3], label = s[4];
      if (en < a || st > b) return;
      var x1 = CX(st), x2 = Math.max(CX(en), x1 + 1), y, hh;
      if (l === 0) { y = NETY; hh = NETH; }
      else {
        var i = lane[l]; if (i === undefined) return;
        y = laneY(i); hh = LANEH;
        if (kind === 'leader') { hh = 13; }
        else if (kind === 'slowdisk') { y += LANEH - 4; hh = 4; }
        else if (kind === 'diskfull') { y += LANEH - 8; hh = 4; }
      }
      var style = kind === 'leader' ? ' style="fill:hsl(' + ((s[5] * 47) % 360) + ',65%,55%)"' : '';
      h.push('<rect class="' + esc(kind) + '"' + style + ' x="' + x1 + '" y="' + y + '" width="' +
             (x2 - x1) + '" height="' + hh + '"><title>' + esc(label + '\n' + secs(st) + ' .. ' +
             secs(en)) + '</title></rect>');
      if ((kind === 'leader' || kind === 'net') && x2 - x1 > 40) {
        var txt = kind === 'leader' ? 'T' + s[5] : label;
        h.push('<text x="' + (Math.max(x1, LEFT) + 3) + '" y="' + (y + 11) + '" style="font-size:10px">' +
               esc(txt.length * 6 > x2 - x1 ? txt.slice(0, Math.max(1, Math.floor((x2 - x1) / 6) - 1)) + '\u2026' : txt) +
               '</text>');
      }
    });
    // Client operations.
    var opsIn = [], oi;
    for (oi = 0; oi < D.ops.length; oi++) {
      var o = D.ops[oi], end = o[2] < 0 ? T1 : o[2];
      if (o[1] <= b && end >= a) opsIn.push(oi);
    }
    var ostep = Math.max(1, Math.ceil(opsIn.length / MAXDRAW)), opsDrawn = 0;
    for (oi = 0; oi < opsIn.length; oi += ostep) {
      var op = D.ops[opsIn[oi]], oend = op[2] < 0 ? T1 : op[2], ci = client[op[0]];
      var ox1 = CX(op[1]), ox2 = Math.max(CX(oend), ox1 + 2);
      var cls = 'op op-' + esc(op[3]) + (op[4] === 'unknown' ? ' op-unknown' : '') +
                (op[4] === 'failed' || op[4] === 'notapplied' ? ' op-failed' : '');
      h.push('<rect class="' + cls + '" x="' + ox1 + '" y="' + (CLI0 + ci * CLIH + 1) + '" width="' +
             (ox2 - ox1) + '" height="' + (CLIH - 2) + '"><title>' + esc(op[5]) + '</title></rect>');
      opsDrawn++;
    }
    // Messages: those that can touch the window, thinned by priority when there are many.
    var lo = firstSentAtOrAfter(a - D.maxDelay), hi = firstSentAtOrAfter(b + 1);
    var classes = [[], [], []], inView = 0, i;
    for (i = lo; i < hi; i++) {
      var ts = D.m[i * S], tr = D.m[i * S + 1];
      if (tr >= 0 ? tr < a : ts < a) continue;
      inView++;
      var f = fam(D.m[i * S + 4]);
      if (hidden[f]) continue;
      classes[f === 'heartbeat' ? 2 : f === 'append' ? 1 : 0].push(i);
    }
    var budget = MAXDRAW, drawn = 0, shown = 0;
    classes.forEach(function (c) { shown += c.length; });
    classes.forEach(function (c) {
      var step = c.length <= budget ? 1 : c.length / Math.max(budget, 1);
      for (var j = 0; budget > 0 && j < c.length; j += step) {
        var m = Math.floor(j);
        drawn++; budget--;
        var mi = c[m], ms = D.m[mi * S], mr = D.m[mi * S + 1], from = lane[D.m[mi * S + 2]];
        var to = lane[D.m[mi * S + 3]], ty = D.m[mi * S + 4], fl = D.m[mi * S + 5], ff = fam(ty);
        var y1 = laneY(from) + LANEH / 2 + 4, y2 = laneY(to) + LANEH / 2 + 4, x1 = X(ms);
        var title = D.mt[mi] + '\nsent ' + secs(ms);
        if (mr >= 0) {
          title += ', delivered ' + secs(mr) + ' (' + ((mr - ms) / 1000).toFixed(3) + ' ms)';
          if (fl & F_DUP) title += ', duplicate delivery';
          if (fl & F_DOWN) title += ', dropped: receiver down';
          if (fl & F_HELD) title += ', held: receiver paused';
          if (!(fl & F_EXACT)) title += '\n(delivery paired by link and type; approximate)';
          h.push('<line class="m f-' + ff + '" x1="' + x1 + '" y1="' + y1 + '" x2="' + X(mr) + '" y2="' + y2 +
                 '" marker-end="url(#ah-' + ff + ')"' + (fl & F_DOWN ? ' stroke-dasharray="1 3"' : '') +
                 '><title>' + esc(title) + '</title></line>');
        } else {
          var blocked = fl & F_BLOCKED;
          title += blocked ? ', never delivered: link blocked' :
                   fl & F_DROPPED ? ', lost by the network' : ', no delivery in the trace (lost)';
          var ex = x1 + 14, ey = y1 + (y2 - y1) * 0.3;
          h.push('<g><line class="m f-' + ff + (blocked ? ' m-blocked' : ' m-lost') + '" x1="' + x1 + '" y1="' + y1 +
                 '" x2="' + ex + '" y2="' + ey + '"/><path class="m m-blocked" d="M' + (ex - 3) + ' ' + (ey - 3) +
                 'l6 6m0 -6l-6 6"/><title>' + esc(title) + '</title></g>');
        }
      }
    });
    // Marks.
    D.marks.forEach(function (mk) {
      if (mk[1] < a || mk[1] > b) return;
      var x = X(mk[1]);
      if (mk[2] === 'fail') {
        h.push('<line class="failline" x1="' + x + '" x2="' + x + '" y1="' + AXIS + '" y2="' + HEIGHT +
               '"><title>' + esc(mk[3]) + '</title></line><text x="' + (x + 4) + '" y="' + (AXIS + 14) +
               '" style="fill:#c00;font-weight:bold">FAIL</text>');
        return;
      }
      if (mk[2] === 'healall') {
        h.push('<line class="healall" x1="' + x + '" x2="' + x + '" y1="' + AXIS + '" y2="' + HEIGHT +
               '"><title>heal all: the liveness phase starts</title></line>');
        return;
      }
      var y = mk[0] === 0 ? NETY + NETH / 2 : laneY(lane[mk[0]]) + 20;
      h.push(mark(mk[2], x, y, secs(mk[1]) + ' ' + mk[3]));
    });
    h.push('</g></svg>');
    box.innerHTML = h.join('');
    var msg = 'window ' + secs(a) + ' .. ' + secs(b) + ' (' + ((b - a) / 1000).toFixed(3) + ' ms): ' +
              inView + ' messages in view, ' + drawn + ' drawn';
    if (drawn < shown) msg += ' (thinned: zoom in to see all; heartbeats go first)';
    msg += '; ' + opsIn.length + ' client operations' + (opsDrawn < opsIn.length ? ', ' + opsDrawn + ' drawn' : '');
    statusEl.textContent = msg;
    var br = document.getElementById('ov-brush'), ov = document.getElementById('overview');
    if (br && ov) {
      var ol = +ov.getAttribute('data-left'), ow = +ov.getAttribute('data-plot-width');
      var bx1 = ol + (Math.max(a, T0) - T0) / TOTAL * ow, bx2 = ol + (Math.min(b, T1) - T0) / TOTAL * ow;
      br.setAttribute('x', bx1); br.setAttribute('width', Math.max(2, bx2 - bx1));
    }
    listLines(a, b, lo, hi);
  }

  function listLines(a, b, lo, hi) {
    var out = [], i, more = 0;
    function add(t, s) { if (out.length < MAXLINES) out.push([t, s]); else more++; }
    D.ev.forEach(function (e) { if (e[0] >= a && e[0] <= b) add(e[0], e[3]); });
    for (i = lo; i < hi; i++) {
      var ts = D.m[i * S], tr = D.m[i * S + 1];
      if (ts >= a && ts <= b && !(D.m[i * S + 5] & F_DUP)) add(ts, '  send ' + D.mt[i]);
      if (tr >= a && tr <= b) add(tr, '  recv ' + D.m[i * S + 2] + '->' + D.m[i * S + 3] + ' ' + D.types[D.m[i * S + 4]]);
    }
    D.ops.forEach(function (o) { if (o[2] >= a && o[2] <= b) add(o[2], '  client ' + o[5]); });
    out.sort(function (x, y) { return x[0] - y[0]; });
    linesEl.textContent = out.map(function (l) { return ('            ' + (l[0] / 1e6).toFixed(6)).slice(-12) + ' ' + l[1]; }).join('\n') +
      (more ? '\n\u2026 ' + more + ' more lines in this window: zoom in' : '');
  }

  // Controls.
  var controls = document.getElementById('controls');
  function button(label, fn) {
    var bt = document.createElement('button'); bt.textContent = label; bt.onclick = fn; controls.appendChild(bt);
  }
  button('zoom in', function () { var c = (view.a + view.b) / 2, w = (view.b - view.a) / 4; setView(c - w, c + w); });
  button('zoom out', function () { var c = (view.a + view.b) / 2, w = view.b - view.a; setView(c - w, c + w); });
  button('\u25c0', function () { var w = view.b - view.a; setView(view.a - w / 2, view.b - w / 2); });
  button('\u25b6', function () { var w = view.b - view.a; setView(view.a + w / 2, view.b + w / 2); });
  button('whole run', function () { setView(T0, T1); });
  if (D.fail >= 0) button('go to FAIL', function () { failWindow(); setView(view.a, view.b); });
  var fa = document.createElement('input'), fb = document.createElement('input');
  fa.type = fb.type = 'text'; fa.title = 'from (seconds)'; fb.title = 'to (seconds)';
  controls.appendChild(document.createTextNode(' from')); controls.appendChild(fa);
  controls.appendChild(document.createTextNode('to')); controls.appendChild(fb);
  button('show', function () {
    var x = parseFloat(fa.value), y = parseFloat(fb.value);
    if (isFinite(x) && isFinite(y) && y > x) setView(x * 1e6, y * 1e6);
  });
  var seen = {};
  D.fam.forEach(function (f) {
    if (seen[f]) return; seen[f] = true;
    var lb = document.createElement('label'), cb = document.createElement('input');
    cb.type = 'checkbox'; cb.checked = true;
    cb.onchange = function () { hidden[f] = !cb.checked; render(); };
    lb.appendChild(cb); lb.appendChild(document.createTextNode(f)); controls.appendChild(lb);
  });
  // Wheel zooms around the pointer, dragging pans.
  box.addEventListener('wheel', function (e) {
    e.preventDefault();
    var r = box.getBoundingClientRect(), W = Math.max(600, box.clientWidth || 1200);
    var p = view.a + (e.clientX - r.left - LEFT) / (W - LEFT - RIGHT) * (view.b - view.a);
    var z = e.deltaY > 0 ? 1.3 : 1 / 1.3;
    setView(p - (p - view.a) * z, p + (view.b - p) * z);
  }, {passive: false});
  var drag = null;
  box.addEventListener('mousedown', function (e) { drag = {x: e.clientX, a: view.a, b: view.b}; });
  window.addEventListener('mouseup', function () { drag = null; });
  window.addEventListener('mousemove', function (e) {
    if (!drag) return;
    var W = Math.max(600, box.clientWidth || 1200);
    var dt = (e.clientX - drag.x) / (W - LEFT - RIGHT) * (drag.b - drag.a);
    if (Math.abs(dt) > 0) setView(drag.a - dt, drag.b - dt);
  });
  var ovs = document.getElementById('overview');
  if (ovs) ovs.addEventListener('click', function (e) {
    var r = ovs.getBoundingClientRect();
    var ol = +ovs.getAttribute('data-left'), ow = +ovs.getAttribute('data-plot-width');
    centre(T0 + (e.clientX - r.left - ol) / ow * TOTAL);
  });
  Array.prototype.forEach.call(document.querySelectorAll('[data-t]'), function (el) {
    el.addEventListener('click', function (e) { e.preventDefault(); centre(+el.getAttribute('data-t')); });
  });
  window.addEventListener('resize', render);
  render();
})();
)JS";

std::string Num(double v) { return absl::StrFormat("%.1f", v); }

// One marker shape in the overview (the script draws the same ones in the detail view).
std::string MarkSvg(const Mark& mk, double x, double y) {
  const std::string title =
      absl::StrCat("<title>", Html(Truncate(CleanUtf8(absl::StrCat(Seconds(mk.t), " ", mk.text)),
                                            kShortTextBytesMax)),
                   "</title>");
  const std::string cls = absl::StrCat(" class=\"mk-", Html(mk.kind), "\"");
  if (mk.kind == "crash") {
    return absl::StrCat("<g", cls, "><path d=\"M", Num(x - 4), " ", Num(y - 4),
                        "l8 8m0 -8l-8 8\"/>", title, "</g>");
  }
  if (mk.kind == "start" || mk.kind == "restart") {
    return absl::StrCat("<path", cls, " d=\"M", Num(x), " ", Num(y - 5), "l5 9h-10z\">", title,
                        "</path>");
  }
  if (mk.kind == "corrupt" || mk.kind == "refused") {
    return absl::StrCat("<path", cls, " d=\"M", Num(x), " ", Num(y - 5), "l5 5l-5 5l-5 -5z\">",
                        title, "</path>");
  }
  return absl::StrCat("<circle", cls, " cx=\"", Num(x), "\" cy=\"", Num(y), "\" r=\"3\">", title,
                      "</circle>");
}

std::string Overview(const Model& m, const std::vector<int>& node_ids) {
  const int64_t t0 = m.t_first, t1 = std::max(m.t_last, m.t_first + 1);
  const double plot = kOvWidth - kOvLeft - kOvRight;
  auto x = [&](int64_t t) {
    return kOvLeft + plot * static_cast<double>(std::clamp(t, t0, t1) - t0) /
                         static_cast<double>(t1 - t0);
  };
  std::map<int, int> lane_of;
  for (size_t i = 0; i < node_ids.size(); ++i) lane_of[node_ids[i]] = static_cast<int>(i);
  auto lane_y = [](int i) { return kOvLane0 + i * (kOvLaneH + kOvLaneGap); };
  const int clients_y = lane_y(static_cast<int>(node_ids.size())) + 4;
  const int height = clients_y + (m.ops.empty() ? 0 : kOvClientsH + 4) + kOvAxisH;
  std::string s = absl::StrFormat(
      "<svg id=\"overview\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" data-left=\"%d\" data-plot-width=\"%d\">\n",
      kOvWidth, height, kOvWidth, height, kOvLeft, kOvWidth - kOvLeft - kOvRight);
  // Network row.
  absl::StrAppendFormat(&s,
                        "<g class=\"netrow\"><rect class=\"lanebg\" x=\"%d\" y=\"%d\" "
                        "width=\"%d\" height=\"%d\"/><text x=\"4\" y=\"%d\">network</text>",
                        kOvLeft, kOvNetY, kOvWidth - kOvLeft - kOvRight, kOvNetH, kOvNetY + 12);
  for (const Span& sp : m.spans) {
    if (sp.lane != 0) continue;
    const double x1 = x(sp.start), x2 = std::max(x(sp.end), x1 + 1);
    absl::StrAppend(&s, "<rect class=\"net\" x=\"", Num(x1), "\" y=\"", kOvNetY, "\" width=\"",
                    Num(x2 - x1), "\" height=\"", kOvNetH, "\"><title>",
                    Html(absl::StrCat(sp.label, "\n", Seconds(sp.start), " .. ", Seconds(sp.end))),
                    "</title></rect>");
  }
  for (const Mark& mk : m.marks) {
    if (mk.lane == 0 && mk.kind != "fail" && mk.kind != "healall") {
      absl::StrAppend(&s, MarkSvg(mk, x(mk.t), kOvNetY + kOvNetH / 2.0));
    }
  }
  absl::StrAppend(&s, "</g>\n");
  // Node lanes: spans, message density, markers.
  std::map<int, std::vector<int>> density;
  for (int id : node_ids) density[id].assign(kDensityBuckets, 0);
  for (const Message& msg : m.messages) {
    if (msg.flags & kDuplicate) continue;
    const int64_t b = (msg.sent - t0) * kDensityBuckets / (t1 - t0 + 1);
    density[msg.from][static_cast<size_t>(std::clamp<int64_t>(b, 0, kDensityBuckets - 1))]++;
  }
  for (size_t i = 0; i < node_ids.size(); ++i) {
    const int id = node_ids[i];
    const int y = lane_y(static_cast<int>(i));
    absl::StrAppendFormat(&s,
                          "<g class=\"lane\" data-node=\"%d\"><rect class=\"lanebg\" x=\"%d\" "
                          "y=\"%d\" width=\"%d\" height=\"%d\"/><text class=\"lanelabel\" x=\"4\" "
                          "y=\"%d\">n%d</text>",
                          id, kOvLeft, y, kOvWidth - kOvLeft - kOvRight, kOvLaneH, y + 17, id);
    const std::vector<int>& d = density[id];
    const int peak = std::max(1, *std::max_element(d.begin(), d.end()));
    std::string path;
    for (int b = 0; b < kDensityBuckets; ++b) {
      if (d[static_cast<size_t>(b)] == 0) continue;
      const double bh = 8.0 * d[static_cast<size_t>(b)] / peak;
      absl::StrAppend(&path, "M", Num(kOvLeft + plot * b / kDensityBuckets), " ",
                      Num(y + kOvLaneH - bh), "h", Num(plot / kDensityBuckets), "v", Num(bh), "h",
                      Num(-plot / kDensityBuckets), "z");
    }
    if (!path.empty()) {
      absl::StrAppend(&s, "<path class=\"dens\" d=\"", path,
                      "\"><title>messages sent by n", id, " (density)</title></path>");
    }
    for (const Span& sp : m.spans) {
      if (sp.lane != id) continue;
      const double x1 = x(sp.start), x2 = std::max(x(sp.end), x1 + 1);
      double sy = y, sh = kOvLaneH;
      std::string style;
      if (sp.kind == "leader") {
        sh = 9;
        style = absl::StrCat(" style=\"fill:hsl(", (sp.term * 47) % 360, ",65%,55%)\"");
      } else if (sp.kind == "slowdisk") {
        sy = y + kOvLaneH - 3;
        sh = 3;
      } else if (sp.kind == "diskfull") {
        sy = y + kOvLaneH - 6;
        sh = 3;
      }
      absl::StrAppend(&s, "<rect class=\"", Html(sp.kind), "\"", style, " x=\"", Num(x1),
                      "\" y=\"", Num(sy), "\" width=\"", Num(x2 - x1), "\" height=\"", Num(sh),
                      "\"><title>",
                      Html(absl::StrCat("n", id, " ", sp.label, "\n", Seconds(sp.start), " .. ",
                                        Seconds(sp.end))),
                      "</title></rect>");
      if (sp.kind == "leader" && x2 - x1 > 22) {
        absl::StrAppend(&s, "<text x=\"", Num(x1 + 2), "\" y=\"", y + 8,
                        "\" style=\"font-size:8px\">T", sp.term, "</text>");
      }
    }
    for (const Mark& mk : m.marks) {
      if (mk.lane == id && mk.kind != "leader") absl::StrAppend(&s, MarkSvg(mk, x(mk.t), y + 15));
    }
    absl::StrAppend(&s, "</g>\n");
  }
  // Client completions.
  if (!m.ops.empty()) {
    std::vector<int> d(kDensityBuckets, 0);
    for (const Op& op : m.ops) {
      if (op.complete < 0) continue;
      const int64_t b = (op.complete - t0) * kDensityBuckets / (t1 - t0 + 1);
      d[static_cast<size_t>(std::clamp<int64_t>(b, 0, kDensityBuckets - 1))]++;
    }
    const int peak = std::max(1, *std::max_element(d.begin(), d.end()));
    absl::StrAppendFormat(&s,
                          "<g class=\"clientrow\"><rect class=\"lanebg\" x=\"%d\" y=\"%d\" "
                          "width=\"%d\" height=\"%d\"/><text x=\"4\" y=\"%d\">clients</text>",
                          kOvLeft, clients_y, kOvWidth - kOvLeft - kOvRight, kOvClientsH,
                          clients_y + 12);
    std::string path;
    for (int b = 0; b < kDensityBuckets; ++b) {
      if (d[static_cast<size_t>(b)] == 0) continue;
      const double bh = (kOvClientsH - 2.0) * d[static_cast<size_t>(b)] / peak;
      absl::StrAppend(&path, "M", Num(kOvLeft + plot * b / kDensityBuckets), " ",
                      Num(clients_y + kOvClientsH - bh), "h", Num(plot / kDensityBuckets), "v",
                      Num(bh), "h", Num(-plot / kDensityBuckets), "z");
    }
    if (!path.empty()) {
      absl::StrAppend(&s, "<path class=\"op-put\" d=\"", path,
                      "\"><title>client operations completed (density)</title></path>");
    }
    absl::StrAppend(&s, "</g>\n");
  }
  // Axis.
  const int axis_y = height - kOvAxisH + 4;
  absl::StrAppendFormat(&s, "<line class=\"axis\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/>",
                        kOvLeft, kOvWidth - kOvRight, axis_y, axis_y);
  const int64_t span = t1 - t0;
  int64_t step = 0;  // 1, 2 or 5 times a power of ten, about ten ticks
  for (int64_t p = 1; step == 0; p *= 10) {
    for (int64_t k : {1, 2, 5}) {
      if (step == 0 && span / (k * p) <= 12) step = k * p;
    }
  }
  for (int64_t t = (t0 + step - 1) / step * step; t <= t1; t += step) {
    absl::StrAppend(&s, "<line class=\"axis\" x1=\"", Num(x(t)), "\" x2=\"", Num(x(t)), "\" y1=\"",
                    axis_y, "\" y2=\"", axis_y + 4, "\"/><text class=\"tick\" x=\"",
                    Num(x(t) + 2), "\" y=\"", axis_y + 13, "\"",
                    x(t) > kOvWidth - 60 ? " text-anchor=\"end\"" : "", ">",
                    absl::StrFormat("%.6g", static_cast<double>(t) / 1e6), "s</text>");
  }
  // Whole-cluster lines: liveness phase, failure.
  for (const Mark& mk : m.marks) {
    if (mk.kind == "healall") {
      absl::StrAppend(&s, "<line class=\"healall\" x1=\"", Num(x(mk.t)), "\" x2=\"", Num(x(mk.t)),
                      "\" y1=\"", kOvNetY, "\" y2=\"", axis_y,
                      "\"><title>heal all: the liveness phase starts at ", Seconds(mk.t),
                      "</title></line>");
    }
  }
  for (const Mark& mk : m.marks) {
    if (mk.kind != "fail") continue;
    absl::StrAppend(&s, "<g class=\"failmark\"><line class=\"failline\" x1=\"", Num(x(mk.t)),
                    "\" x2=\"", Num(x(mk.t)), "\" y1=\"", kOvNetY - 4, "\" y2=\"", axis_y,
                    "\"/><text x=\"", Num(std::min(x(mk.t) + 4, kOvWidth - 40.0)), "\" y=\"",
                    kOvNetY - 8, "\" style=\"fill:#c00;font-weight:bold\">FAIL</text><title>",
                    Html(Truncate(CleanUtf8(mk.text), kShortTextBytesMax)), "</title></g>");
  }
  absl::StrAppendFormat(&s,
                        "<rect id=\"ov-brush\" class=\"brush\" x=\"%d\" y=\"%d\" width=\"0\" "
                        "height=\"%d\"/>\n</svg>\n",
                        kOvLeft, kOvNetY - 2, axis_y - kOvNetY + 2);
  return s;
}

std::string Data(const Model& m, const std::vector<int>& node_ids) {
  std::string s = "{";
  int64_t max_delay = 0;
  for (const Message& msg : m.messages) {
    if (msg.received >= 0) max_delay = std::max(max_delay, msg.received - msg.sent);
  }
  absl::StrAppend(&s, "\"t0\":", m.t_first, ",\"t1\":", std::max(m.t_last, m.t_first + 1),
                  ",\"fail\":", m.fail_t, ",\"maxDelay\":", max_delay, ",\"nodes\":[",
                  absl::StrJoin(node_ids, ","), "],\"clients\":[", absl::StrJoin(m.clients, ","),
                  "],\"types\":[");
  for (size_t i = 0; i < m.types.size(); ++i) absl::StrAppend(&s, i ? "," : "", Json(m.types[i]));
  absl::StrAppend(&s, "],\"fam\":[");
  for (size_t i = 0; i < m.types.size(); ++i) {
    absl::StrAppend(&s, i ? "," : "", Json(Family(m.types[i])));
  }
  absl::StrAppend(&s, "],\n\"m\":[");
  for (size_t i = 0; i < m.messages.size(); ++i) {
    const Message& msg = m.messages[i];
    absl::StrAppend(&s, i ? "," : "", msg.sent, ",", msg.received, ",", msg.from, ",", msg.to, ",",
                    msg.type, ",", msg.flags);
    if (i % 16 == 15) s += "\n";
  }
  absl::StrAppend(&s, "],\n\"mt\":[");
  for (size_t i = 0; i < m.messages.size(); ++i) {
    absl::StrAppend(&s, i ? ",\n" : "", Json(m.messages[i].text));
  }
  absl::StrAppend(&s, "],\n\"spans\":[");
  for (size_t i = 0; i < m.spans.size(); ++i) {
    const Span& sp = m.spans[i];
    absl::StrAppend(&s, i ? ",\n" : "", "[", sp.lane, ",", sp.start, ",", sp.end, ",",
                    Json(sp.kind), ",", Json(sp.label), ",", sp.term, "]");
  }
  absl::StrAppend(&s, "],\n\"marks\":[");
  for (size_t i = 0; i < m.marks.size(); ++i) {
    const Mark& mk = m.marks[i];
    absl::StrAppend(&s, i ? ",\n" : "", "[", mk.lane, ",", mk.t, ",", Json(mk.kind), ",",
                    Json(Truncate(CleanUtf8(mk.text), kShortTextBytesMax)), "]");
  }
  absl::StrAppend(&s, "],\n\"ops\":[");
  for (size_t i = 0; i < m.ops.size(); ++i) {
    const Op& op = m.ops[i];
    absl::StrAppend(&s, i ? ",\n" : "", "[", op.client, ",", op.invoke, ",", op.complete, ",",
                    Json(op.kind), ",", Json(op.result), ",", Json(op.text), "]");
  }
  absl::StrAppend(&s, "],\n\"ev\":[");
  for (size_t i = 0; i < m.events.size(); ++i) {
    const Event& e = m.events[i];
    absl::StrAppend(&s, i ? ",\n" : "", "[", e.t, ",", e.lane, ",", Json(e.kind), ",",
                    Json(Truncate(CleanUtf8(e.text), kShortTextBytesMax)), "]");
  }
  absl::StrAppend(&s, "]}");
  return s;
}

}  // namespace

std::string RenderHtml(const std::vector<std::string>& trace_lines, const std::string& title) {
  Parser parser;
  for (const std::string& element : trace_lines) {
    for (absl::string_view line : absl::StrSplit(element, '\n')) parser.Feed(line);
  }
  const Model m = parser.Finish();
  std::vector<int> node_ids;
  for (int id = 1; id <= m.nodes; ++id) node_ids.push_back(id);

  std::string out;
  out.reserve(4096 + m.messages.size() * 120 + m.ops.size() * 160);
  absl::StrAppend(&out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
                  "<title>", Html(title), "</title>\n<style>", kStyle, "</style>\n</head>\n<body>\n",
                  "<svg class=\"defs\" width=\"0\" height=\"0\" style=\"position:absolute\" "
                  "aria-hidden=\"true\"><defs><pattern id=\"hatch\" width=\"6\" height=\"6\" "
                  "patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" "
                  "height=\"6\" fill=\"#e4e4e4\"/><rect width=\"3\" height=\"6\" fill=\"#bbb\"/>"
                  "</pattern><pattern id=\"rhatch\" width=\"6\" height=\"6\" "
                  "patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" "
                  "height=\"6\" fill=\"#f3d0d0\"/><rect width=\"3\" height=\"6\" fill=\"#d88\"/>"
                  "</pattern></defs></svg>\n<h1>", Html(title), "</h1>\n");
  if (m.fail_event.has_value()) {
    const Event& e = m.events[*m.fail_event];
    absl::StrAppend(&out, "<div class=\"failbox\" id=\"fail\"><b>FAIL</b> at t=",
                    Seconds(e.t), "s <a href=\"#timeline\" data-t=\"", e.t,
                    "\">show in the timeline</a>\n<pre>",
                    Html(Truncate(CleanUtf8(e.text), kEventTextBytesMax)), "</pre></div>\n");
  } else {
    absl::StrAppend(&out, "<div class=\"passbox\">no FAIL line in this trace</div>\n");
  }
  if (!m.config.empty()) {
    absl::StrAppend(&out, "<p class=\"config\">config ", Html(m.config), "</p>\n");
  }
  // Counts.
  absl::StrAppend(&out, "<table class=\"counts\">\n<tr><td>run</td><td>", Seconds(m.t_first),
                  "s .. ", Seconds(m.t_last), "s, ", m.nodes, " nodes, ", m.leader_elections,
                  " leader elections",
                  m.liveness_t >= 0 ? absl::StrCat(", liveness phase from ", Seconds(m.liveness_t),
                                                   "s")
                                    : "",
                  "</td></tr>\n");
  std::vector<std::string> parts;
  for (const auto& [type, n] : m.sends_by_type) parts.push_back(absl::StrCat(Html(type), " ", n));
  uint64_t undelivered = 0, blocked = 0, dups = 0, to_down = 0, held = 0;
  for (const Message& msg : m.messages) {
    if (msg.flags & kDuplicate) ++dups;
    if (msg.received < 0) ++undelivered;
    if (msg.flags & kBlocked) ++blocked;
    if (msg.flags & kToDownNode) ++to_down;
    if (msg.flags & kHeld) ++held;
  }
  absl::StrAppend(&out, "<tr><td>messages</td><td>", m.sends, " sent (", absl::StrJoin(parts, ", "),
                  "); ", m.receives, " deliveries; ", undelivered, " never delivered (", blocked,
                  " on blocked links, the rest lost); ", dups, " duplicate deliveries; ", to_down,
                  " to a down node; ", held, " held by a paused node",
                  m.exact_pairing ? ""
                                  : "<br><span class=\"note\">deliveries are paired with sends by "
                                    "link and type (the trace has no message ids): arrows are "
                                    "approximate under reordering, loss and duplication</span>",
                  m.receives_unpaired
                      ? absl::StrCat("<br><span class=\"note\">", m.receives_unpaired,
                                     " deliveries not paired with a send</span>")
                      : "",
                  m.messages_omitted ? absl::StrCat("<br><span class=\"note\">", m.messages_omitted,
                                                    " messages beyond ", kMessagesMax,
                                                    " not drawn</span>")
                                     : "",
                  "</td></tr>\n");
  parts.clear();
  for (const auto& [k, n] : m.ops_by_result) parts.push_back(absl::StrCat(Html(k), " ", n));
  absl::StrAppend(&out, "<tr><td>client operations</td><td>",
                  parts.empty() ? "none in the trace" : absl::StrJoin(parts, ", "),
                  " (the trace lists completed operations)",
                  m.ops_omitted ? absl::StrCat("; ", m.ops_omitted, " beyond ", kOpsMax,
                                               " not drawn")
                                : "",
                  "</td></tr>\n");
  parts.clear();
  for (const auto& [k, n] : m.faults) parts.push_back(absl::StrCat(Html(k), " ", n));
  absl::StrAppend(&out, "<tr><td>faults</td><td>",
                  parts.empty() ? "none" : absl::StrJoin(parts, ", "), "</td></tr>\n");
  if (m.unrecognized) {
    absl::StrAppend(&out, "<tr><td>other lines</td><td>", m.unrecognized,
                    " not recognized (listed under Events)</td></tr>\n");
  }
  absl::StrAppend(&out, "</table>\n");
  absl::StrAppend(
      &out, "<div class=\"legend\">",
      "<span><i class=\"sw\" style=\"background:hsl(47,65%,55%)\"></i>leader (colour by term)</span>",
      "<span><i class=\"sw\" style=\"background:#bbb\"></i>down</span>",
      "<span><i class=\"sw\" style=\"background:#d88\"></i>refused to start</span>",
      "<span><i class=\"sw\" style=\"background:#f5d000;opacity:.5\"></i>paused</span>",
      "<span><i class=\"sw\" style=\"background:#8c564b\"></i>slow disk</span>",
      "<span><i class=\"sw\" style=\"background:#ff7f0e\"></i>disk full</span>",
      "<span><i class=\"sw\" style=\"background:#f6cccc\"></i>network fault</span>",
      "<span><i class=\"sw\" style=\"background:#1f77b4\"></i>App</span>",
      "<span><i class=\"sw\" style=\"background:#aaa\"></i>Heartbeat</span>",
      "<span><i class=\"sw\" style=\"background:#ff7f0e\"></i>(Pre)Vote</span>",
      "<span><i class=\"sw\" style=\"background:#2ca02c\"></i>ReadIndex / get</span>",
      "<span><i class=\"sw\" style=\"background:#9467bd\"></i>TimeoutNow / cas</span>",
      "<span>&#x2715; crash, &#x25B2; start, &#x25C6; corrupt / refused, "
      "&#x25CF; other event</span></div>\n");
  absl::StrAppend(&out, "<h2>Overview (click to move the timeline)</h2>\n<div class=\"ovwrap\">",
                  Overview(m, node_ids), "</div>\n");
  absl::StrAppend(&out,
                  "<h2 id=\"timeline\">Timeline (wheel: zoom, drag: pan, hover: details)</h2>\n"
                  "<div id=\"controls\"></div>\n<div id=\"detail\"><noscript>The timeline needs "
                  "JavaScript; the overview, the counts and the event table do not."
                  "</noscript></div>\n<div id=\"status\"></div>\n");
  // Event table.
  absl::StrAppend(&out, "<h2>Events (", m.events.size(),
                  m.events_omitted ? absl::StrCat(" shown, ", m.events_omitted, " more omitted")
                                   : "",
                  "; click a row to show it)</h2>\n<table class=\"events\">\n");
  for (const Event& e : m.events) {
    absl::StrAppend(&out, "<tr class=\"ev-", Html(e.kind), "\" data-t=\"", e.t, "\"><td class=\"t\">",
                    Seconds(e.t), "</td><td>", e.lane == 0 ? "cluster" : absl::StrCat("n", e.lane),
                    "</td><td>", Html(e.kind), "</td><td><pre>",
                    Html(Truncate(CleanUtf8(e.text), kEventTextBytesMax)), "</pre></td></tr>\n");
  }
  absl::StrAppend(&out, "</table>\n<h2>Trace lines in the window</h2>\n<pre id=\"lines\"></pre>\n");
  absl::StrAppend(&out, "<script type=\"application/json\" id=\"trace-data\">", Data(m, node_ids),
                  "</script>\n<script>", kScript, "</script>\n</body>\n</html>\n");
  return out;
}

}  // namespace amaters::sim
