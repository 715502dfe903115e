// The HTML timeline (sim/html.h): structure, markers, escaping and size, on a handmade trace
// and on a real simulator trace.
#include "sim/html.h"

#include <cctype>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "sim/checker/linearizability.h"
#include "sim/sim.h"
#include "sim/trace_events.h"

namespace amaters::sim {
namespace {

size_t Count(absl::string_view s, absl::string_view what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != absl::string_view::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

// Tags outside <script> and <style> nest properly; an empty string means they do. A '<' in
// text that is not a tag (unescaped trace text) is reported too.
std::string CheckBalanced(const std::string& html) {
  static const std::set<std::string> kVoid = {"meta", "br", "input", "hr", "img", "link", "wbr"};
  std::vector<std::string> stack;
  size_t i = 0;
  while ((i = html.find('<', i)) != std::string::npos) {
    if (html.compare(i, 4, "<!--") == 0) {
      const size_t e = html.find("-->", i);
      if (e == std::string::npos) return "unterminated comment";
      i = e + 3;
      continue;
    }
    const size_t end = html.find('>', i);
    if (end == std::string::npos) return absl::StrCat("unterminated tag at ", i);
    if (html.compare(i, 2, "<!") == 0) {
      i = end + 1;
      continue;
    }
    const std::string tag = html.substr(i + 1, end - i - 1);
    const bool closing = !tag.empty() && tag[0] == '/';
    const bool self_closing = !tag.empty() && tag.back() == '/';
    std::string name = closing ? tag.substr(1) : tag;
    name = absl::AsciiStrToLower(name.substr(0, name.find_first_of(" \t\n/")));
    if (name.empty()) return absl::StrCat("stray '<' at ", i, ": ", html.substr(i, 40));
    for (char c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c))) {
        return absl::StrCat("stray '<' at ", i, ": ", html.substr(i, 40));
      }
    }
    if (closing) {
      if (stack.empty() || stack.back() != name) {
        return absl::StrCat("</", name, "> at ", i, " closes <",
                            stack.empty() ? "nothing" : stack.back(), ">");
      }
      stack.pop_back();
    } else if (!self_closing && kVoid.count(name) == 0) {
      stack.push_back(name);
      if (name == "script" || name == "style") {
        const size_t e = html.find("</" + name, end);
        if (e == std::string::npos) return absl::StrCat("unterminated <", name, ">");
        i = e;  // the closing tag pops it
        continue;
      }
    }
    i = end + 1;
  }
  if (!stack.empty()) return absl::StrCat("unclosed <", stack.back(), ">");
  return "";
}

// The embedded data: between the JSON script's start tag and its end tag.
std::string EmbeddedData(const std::string& html) {
  const std::string open = "<script type=\"application/json\" id=\"trace-data\">";
  const size_t a = html.find(open);
  if (a == std::string::npos) return "";
  const size_t b = html.find("</script>", a);
  return html.substr(a + open.size(), b - a - open.size());
}

// The static overview SVG.
std::string OverviewSvg(const std::string& html) {
  const size_t a = html.find("<svg id=\"overview\"");
  if (a == std::string::npos) return "";
  return html.substr(a, html.find("</svg>", a) - a);
}

std::vector<std::string> HandmadeTrace() {
  return {
      "    0.000000 config seed=7 nodes=3 sync=always latency=100-5000us",
      "    0.000000 n1 start (incarnation 1) 1 follower term=0 vote=0 leader=0",
      "    0.000000 n2 start (incarnation 1) 2 follower term=0 vote=0 leader=0",
      "    0.000000 n3 start (incarnation 1) 3 follower term=0 vote=0 leader=0",
      "    0.300000   send 1->2 Vote term=1 last=0/0",
      "    0.300000   send 1->3 Vote term=1 last=0/0",
      "    0.302000   recv 1->2 Vote",
      "    0.302000   send 2->1 VoteResp term=1 granted",
      "    0.303000   recv 2->1 VoteResp",
      "    0.303000 n1 leader term 1",
      "    0.303000   send 1->2 App term=1 prev=0/0 commit=0 [1/1 noop]",
      "    0.304000 partition {1} {2,3}",
      "    0.305000   send 1->3 Heartbeat term=1 commit=0",
      "    0.306000   recv 1->2 App",
      "    0.400000   client client 1 put(\"<script>alert(1)</script>\", \"a&b'\") -> ok "
      "[invoke 350000000, complete 400000000]",
      "    0.450000   client client 2 get(\"k\") -> \"v\" [invoke 410000000, complete 450000000]",
      "    0.500000 crash n2",
      "    0.600000 restart n2",
      "    0.600000 n2 start (incarnation 2) 2 follower term=1",
      "    0.700000 pause n3",
      "    0.800000 resume n3",
      "    0.850000 slow disk n1",
      "    0.900000 clog n1->n2 +500ms",
      "    0.950000 corrupt n3 0000000000000001.wal @123",
      "    0.950000 crash n3",
      "    1.000000 restart n3",
      "    1.000000 n3 refuses to start: WAL corruption <b>bold</b>",
      "    1.100000 heal all",
      "    1.100000 heal network",
      "    1.150000 scenario figure8.txt:12: crash 1",
      "    1.160000 campaign n1",
      "    1.170000 transfer n1->n2",
      "    1.200000 something never seen before <img src=x onerror=alert(2)>",
      "    1.300000 FAIL linearizability violation:\n"
      "linearizability violation on key \"<k>\": op #1 reads \"v\", which no operation writes\n"
      "    op #1 client 2 get(\"<k>\") -> \"v\" [invoke 1, complete 2]",
  };
}

TEST(Html, HandmadeTraceHasLanesMarkersAndTheFailure) {
  const std::string html = RenderHtml(HandmadeTrace(), "seed 7 <run>");
  ASSERT_TRUE(absl::StartsWith(html, "<!DOCTYPE html>"));
  EXPECT_TRUE(absl::EndsWith(html, "</html>\n"));
  EXPECT_EQ(CheckBalanced(html), "");
  EXPECT_TRUE(absl::StrContains(html, "<title>seed 7 &lt;run&gt;</title>"));

  // One lane per node, in the static overview.
  EXPECT_EQ(Count(html, "<g class=\"lane\" data-node="), 3u);
  for (int id = 1; id <= 3; ++id) {
    EXPECT_TRUE(absl::StrContains(html, absl::StrCat("data-node=\"", id, "\""))) << id;
  }
  // Spans: leader by term, down, paused, slow disk, refused, the network state.
  EXPECT_TRUE(absl::StrContains(html, "<rect class=\"leader\""));
  EXPECT_TRUE(absl::StrContains(html, "n1 leader term 1"));
  EXPECT_TRUE(absl::StrContains(html, "<rect class=\"down\""));
  EXPECT_TRUE(absl::StrContains(html, "<rect class=\"paused\""));
  EXPECT_TRUE(absl::StrContains(html, "<rect class=\"slowdisk\""));
  EXPECT_TRUE(absl::StrContains(html, "<rect class=\"refused\""));
  EXPECT_TRUE(absl::StrContains(html, "partition {1} {2,3}"));
  EXPECT_TRUE(absl::StrContains(html, "partition {1} {2,3}, clog 1-&gt;2 +500ms"));
  // Markers: two crashes, the corruption, the refusal, starts, liveness phase.
  const std::string overview = OverviewSvg(html);
  EXPECT_EQ(Count(overview, "<g class=\"mk-crash\">"), 2u);
  EXPECT_EQ(Count(overview, "<path class=\"mk-corrupt\""), 1u);
  EXPECT_EQ(Count(overview, "<path class=\"mk-refused\""), 1u);
  EXPECT_EQ(Count(overview, "<path class=\"mk-start\""), 4u);
  EXPECT_EQ(Count(overview, "<line class=\"healall\""), 1u);
  // The failure: a box at the top with its explanation, a line across the overview.
  EXPECT_EQ(Count(html, "<div class=\"failbox\""), 1u);
  EXPECT_TRUE(absl::StrContains(html, "<b>FAIL</b> at t=1.300000s"));
  EXPECT_TRUE(absl::StrContains(html, "op #1 client 2 get(&quot;&lt;k&gt;&quot;)"));
  EXPECT_EQ(Count(overview, "<g class=\"failmark\"><line class=\"failline\""), 1u);
  EXPECT_LT(html.find("class=\"failbox\""), html.find("id=\"overview\""));
  // Counts: 5 sends, the Vote to n3 never delivered, the Heartbeat to n3 on a blocked link.
  EXPECT_TRUE(absl::StrContains(html, "5 sent ("));
  EXPECT_TRUE(absl::StrContains(html, "2 never delivered (1 on blocked links"));
  EXPECT_TRUE(absl::StrContains(html, "put ok 1"));
  EXPECT_TRUE(absl::StrContains(html, "get read 1"));
  // Scenario steps, campaigns and transfers are events of their own.
  EXPECT_TRUE(absl::StrContains(html, "<tr class=\"ev-scenario\""));
  EXPECT_TRUE(absl::StrContains(overview, "<circle class=\"mk-campaign\""));
  EXPECT_TRUE(absl::StrContains(overview, "<circle class=\"mk-transfer\""));
  // The unrecognized line is kept in the event table, escaped.
  EXPECT_TRUE(absl::StrContains(html, "<tr class=\"ev-other\""));
  EXPECT_TRUE(absl::StrContains(html, "never seen before &lt;img src=x onerror=alert(2)&gt;"));

  // Escaping: no trace text becomes markup, in HTML or in the embedded JSON.
  EXPECT_FALSE(absl::StrContains(html, "<script>alert"));
  EXPECT_FALSE(absl::StrContains(html, "<img"));
  EXPECT_FALSE(absl::StrContains(html, "<b>bold"));
  EXPECT_FALSE(absl::StrContains(html, "<k>"));
  EXPECT_EQ(Count(html, "<script"), 2u);  // the data and the code
  EXPECT_EQ(Count(html, "</script"), 2u);
  const std::string data = EmbeddedData(html);
  ASSERT_FALSE(data.empty());
  EXPECT_EQ(data.find('<'), std::string::npos);
  EXPECT_EQ(data.find('>'), std::string::npos);
  EXPECT_TRUE(absl::StrContains(data, "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"));
  EXPECT_TRUE(absl::StrContains(data, "a\\u0026b'"));

  // Deterministic.
  EXPECT_EQ(html, RenderHtml(HandmadeTrace(), "seed 7 <run>"));
}

// A real run's timeline as the chaos runner writes it (sim/chaos/runner.h): the events of
// sim/trace_events.h, no message lines, a node that stops on a full disk and starts again.
TEST(Html, ARealRunIsDrawnFromTheSameEvents) {
  namespace tr = trace;
  const auto at = [](double s, const std::string& text) {
    return tr::Line(static_cast<uint64_t>(s * 1e9), text);
  };
  const std::vector<std::string> lines = {
      at(0.0, tr::Config(1, "nodes=3 clients=4 keys=8 real-processes")),
      at(0.01, tr::Start(1, "")),
      at(0.01, tr::Start(2, "")),
      at(0.01, tr::Start(3, "")),
      at(0.9, tr::Leader(3, 1)),
      at(1.0, tr::ScenarioStep("disk_full.txt", 7, "campaign 1")),
      at(1.0, tr::Campaign(1)),
      at(1.0, tr::Transfer(3, 1)),
      at(1.05, tr::Leader(1, 2)),
      at(1.2, tr::Client(checker::Operation::Put(1, "k0", "c1-0", 1'100'000'000,
                                                  1'200'000'000))),
      at(2.0, tr::DiskFull(2, true)),
      at(2.5, tr::Fatal(2, "exited on its own (node2/amaters-server.log)")),
      at(3.0, tr::Partition({{1, 3}, {2}})),
      at(3.5, tr::Block(1, 3)),
      at(3.6, tr::Clog(3, 1, 200)),
      at(4.0, tr::HealNetwork()),
      at(5.0, tr::DiskFull(2, false)),
      at(5.0, tr::Restart(2)),
      at(5.4, tr::Start(2, "")),
      at(6.0, tr::HealAll()),
      at(6.5, tr::Fail("at the end: 1 acknowledged puts are not in the final state")),
  };
  const std::string html = RenderHtml(lines, "chaos disk_full.txt (real processes)");
  EXPECT_EQ(CheckBalanced(html), "");
  EXPECT_EQ(Count(html, "<g class=\"lane\" data-node="), 3u);
  const std::string overview = OverviewSvg(html);
  EXPECT_EQ(Count(overview, "<rect class=\"leader\""), 2u) << "n3 in term 1, n1 in term 2";
  EXPECT_EQ(Count(overview, "<rect class=\"down\""), 1u) << "n2 from its stop to its start";
  EXPECT_EQ(Count(overview, "<rect class=\"diskfull\""), 1u);
  EXPECT_EQ(Count(overview, "<rect class=\"refused\""), 0u);
  EXPECT_TRUE(absl::StrContains(html, "partition {1,3} {2}"));
  EXPECT_TRUE(absl::StrContains(html, "put ok 1"));
  EXPECT_EQ(Count(html, "<div class=\"failbox\""), 1u);
  EXPECT_FALSE(absl::StrContains(html, "other lines")) << "every line was recognized";
}

TEST(Html, TraceFileLinesWithoutTimesContinueTheFailure) {
  // A --trace file splits the FAIL element into lines; the explanation still belongs to it.
  std::vector<std::string> lines = HandmadeTrace();
  const std::string fail = lines.back();
  lines.pop_back();
  for (size_t a = 0, b; a <= fail.size(); a = b + 1) {
    b = fail.find('\n', a);
    if (b == std::string::npos) b = fail.size();
    lines.push_back(fail.substr(a, b - a));
  }
  const std::string html = RenderHtml(lines, "file");
  EXPECT_EQ(CheckBalanced(html), "");
  const size_t box = html.find("<div class=\"failbox\"");
  ASSERT_NE(box, std::string::npos);
  const size_t box_end = html.find("</div>", box);
  EXPECT_NE(html.find("op #1 client 2 get(", box), std::string::npos);
  EXPECT_LT(html.find("op #1 client 2 get(", box), box_end);
}

TEST(Html, BadBytesLongLinesAndEmptyTraces) {
  std::string payload(100000, 'x');
  payload[10] = '\xff';  // not UTF-8
  payload[20] = '\x01';  // control character
  const std::vector<std::string> lines = {
      "    0.000000 n1 start (incarnation 1)",
      absl::StrCat("    0.100000   send 1->2 App term=1 prev=0/0 commit=0 [1/1 ", payload, "]"),
      "    0.100000 \xe2\x80\xa8 line separator and \xc3\xa9",
  };
  const std::string html = RenderHtml(lines, "bytes \xff");
  EXPECT_EQ(CheckBalanced(html), "");
  EXPECT_LT(html.size(), 80000u) << "message texts are truncated";
  EXPECT_EQ(html.find('\xff'), std::string::npos);
  EXPECT_EQ(html.find('\x01'), std::string::npos);
  EXPECT_TRUE(absl::StrContains(EmbeddedData(html), "\\u2028"));
  EXPECT_TRUE(absl::StrContains(html, "\xc3\xa9"));  // valid UTF-8 stays

  const std::string empty = RenderHtml({}, "empty");
  EXPECT_EQ(CheckBalanced(empty), "");
  EXPECT_TRUE(absl::StrContains(empty, "no FAIL line in this trace"));
  EXPECT_EQ(CheckBalanced(RenderHtml({"garbage without a time", "", "  12x oops"}, "g")), "");
}

TEST(Html, MessageIdsPairExactly) {
  const std::string html = RenderHtml(
      {
          "    0.000000 config seed=1 nodes=2 latency=100-200us",
          "    0.100000   send #1 1->2 Heartbeat term=1 commit=0",
          "    0.100000   send #2 1->2 Heartbeat term=1 commit=0",
          "    0.100100   recv #2 1->2 Heartbeat",
          "    0.100200   recv #1 1->2 Heartbeat",
          "    0.100300   recv #1 1->2 Heartbeat",
      },
      "ids");
  EXPECT_EQ(CheckBalanced(html), "");
  EXPECT_FALSE(absl::StrContains(html, "arrows are approximate"));
  EXPECT_TRUE(absl::StrContains(html, "1 duplicate deliveries"));
  // Flags: exact (16) on both, duplicate (2) on the extra delivery of #1.
  EXPECT_TRUE(absl::StrContains(EmbeddedData(html), "100000,100200,1,2,0,16"));
  EXPECT_TRUE(absl::StrContains(EmbeddedData(html), "100000,100100,1,2,0,16"));
  EXPECT_TRUE(absl::StrContains(EmbeddedData(html), "100000,100300,1,2,0,18"));
}

TEST(Html, RealSimulatorTrace) {
  SimConfig c = DrawConfig(1);
  c.safety_ms = 2000;
  RunResult r = RunSeed(c, /*keep_trace=*/true);
  ASSERT_FALSE(r.trace.empty());
  size_t trace_bytes = 0, sends = 0;
  for (const std::string& line : r.trace) {
    trace_bytes += line.size() + 1;
    if (absl::StrContains(line, "   send ")) ++sends;
  }
  ASSERT_GT(sends, 100u) << "the run should exchange messages";
  const std::string html = RenderHtml(r.trace, "seed 1");
  EXPECT_EQ(CheckBalanced(html), "");
  EXPECT_EQ(Count(html, "<g class=\"lane\" data-node="), static_cast<size_t>(c.nodes));
  EXPECT_TRUE(absl::StrContains(html, "<rect class=\"leader\""));
  EXPECT_TRUE(absl::StrContains(html, absl::StrCat(sends, " sent (")));
  EXPECT_EQ(Count(OverviewSvg(html), "<line class=\"healall\""), 1u);
  EXPECT_EQ(Count(html, "<div class=\"failbox\""), r.ok ? 0u : 1u) << r.failure;
  const std::string data = EmbeddedData(html);
  EXPECT_EQ(data.find('<'), std::string::npos);
  EXPECT_EQ(Count(html, "</script"), 2u);
  // Bounded: a constant per line plus the fixed page.
  EXPECT_LT(html.size(), 100000 + 3 * trace_bytes)
      << "trace " << trace_bytes << " bytes, " << r.trace.size() << " lines";
}

}  // namespace
}  // namespace amaters::sim
