// `--html=FILE`: the simulator's event trace as one self-contained HTML timeline
// (docs/simulation.md, "Reading a failure").
//
// Input is the readable trace (RunResult::trace, the chaos runner's timeline of a real run, or
// the lines of a --trace file): each line "%12.6f <text>", the events as sim/trace_events.h
// writes them for both drivers, plus the simulator's `send` / `recv` lines kept with
// keep_trace (a real run has no message lines). Elements may hold several lines (a FAIL line carries its explanation on
// the following lines, without a time); lines without a time continue the previous event.
// Lines the renderer does not recognize are kept and shown in the event list, never dropped.
//
// Output is one HTML document with inline CSS, SVG and JavaScript and no external resource:
//   - a header with the configuration, counts and, when the run failed, the FAIL text;
//   - a static overview SVG of the whole run (readable without JavaScript): one lane per node
//     with down / refused / paused / slow-disk / disk-full spans, leader spans coloured by term,
//     fault markers, message density, client completions, the network state (partitions,
//     one-way blocks, clogs), the start of the liveness phase and the failure;
//   - a zoomable, pannable detail view drawn by the inline script for the visible window only:
//     message arrows from sender to receiver (send time to delivery time; thinned, with counts,
//     when more than a few thousand are in view), client operations as invoke..complete bars,
//     the same spans and markers, and the trace lines of the window;
//   - a table of every event that is not a message or a client completion.
// All trace text is escaped (HTML text, attributes and the embedded JSON), so keys and values
// chosen by a workload cannot inject markup or script.
#ifndef AMATERS_SIM_HTML_H_
#define AMATERS_SIM_HTML_H_

#include <string>
#include <vector>

namespace amaters::sim {

// Renders the trace as one HTML document titled `title` (escaped). Deterministic: the same
// lines give the same bytes. The size is bounded by a constant per line (message texts are
// truncated; past a few hundred thousand messages the rest are counted, not drawn).
std::string RenderHtml(const std::vector<std::string>& trace_lines, const std::string& title);

}  // namespace amaters::sim

#endif  // AMATERS_SIM_HTML_H_
