#include "sim/checker/linearizability.h"

#include <algorithm>
#include <limits>
#include <map>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/base/check.h"

namespace amaters::sim::checker {

// ---------------------------------------------------------------------------------------------
// Operation factories and descriptions.

Operation Operation::Put(uint64_t client, std::string key, std::string value, uint64_t invoke_ns,
                         uint64_t complete_ns) {
  Operation op;
  op.client = client;
  op.key = std::move(key);
  op.kind = OpKind::kPut;
  op.value = std::move(value);
  op.invoke_ns = invoke_ns;
  op.complete_ns = complete_ns;
  return op;
}

Operation Operation::Get(uint64_t client, std::string key, std::optional<std::string> read,
                         uint64_t invoke_ns, uint64_t complete_ns) {
  Operation op;
  op.client = client;
  op.key = std::move(key);
  op.kind = OpKind::kGet;
  op.read = std::move(read);
  op.invoke_ns = invoke_ns;
  op.complete_ns = complete_ns;
  return op;
}

Operation Operation::Delete(uint64_t client, std::string key, uint64_t invoke_ns,
                            uint64_t complete_ns) {
  Operation op;
  op.client = client;
  op.key = std::move(key);
  op.kind = OpKind::kDelete;
  op.invoke_ns = invoke_ns;
  op.complete_ns = complete_ns;
  return op;
}

Operation Operation::Cas(uint64_t client, std::string key, std::optional<std::string> expected,
                         std::string new_value, bool succeeded, uint64_t invoke_ns,
                         uint64_t complete_ns) {
  Operation op;
  op.client = client;
  op.key = std::move(key);
  op.kind = OpKind::kCas;
  op.expected = std::move(expected);
  op.value = std::move(new_value);
  op.cas_succeeded = succeeded;
  op.invoke_ns = invoke_ns;
  op.complete_ns = complete_ns;
  return op;
}

Operation Operation::Unknown() const {
  Operation op = *this;
  op.outcome = OpOutcome::kUnknown;
  return op;
}

Operation Operation::Failed() const {
  Operation op = *this;
  op.outcome = OpOutcome::kFailed;
  return op;
}

absl::string_view VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kOk:
      return "ok";
    case Verdict::kViolation:
      return "violation";
    case Verdict::kUnknown:
      return "unknown";
  }
  return "?";
}

namespace {

// Values in explanations: quoted, C-escaped, at most this many bytes of the original shown.
constexpr size_t kShownValueBytesMax = 40;

std::string Quote(absl::string_view s) {
  if (s.size() <= kShownValueBytesMax) return absl::StrCat("\"", absl::CEscape(s), "\"");
  return absl::StrCat("\"", absl::CEscape(s.substr(0, kShownValueBytesMax)), "\"...(",
                      s.size(), " bytes)");
}

std::string QuoteValue(const std::optional<std::string>& v) {
  return v.has_value() ? Quote(*v) : "absent";
}

}  // namespace

std::string DescribeOperation(const Operation& op) {
  std::string s = absl::StrCat("client ", op.client, " ");
  switch (op.kind) {
    case OpKind::kPut:
      absl::StrAppend(&s, "put(", Quote(op.key), ", ", Quote(op.value), ")");
      break;
    case OpKind::kGet:
      absl::StrAppend(&s, "get(", Quote(op.key), ")");
      break;
    case OpKind::kDelete:
      absl::StrAppend(&s, "delete(", Quote(op.key), ")");
      break;
    case OpKind::kCas:
      absl::StrAppend(&s, "cas(", Quote(op.key), ", ", QuoteValue(op.expected), " -> ",
                      Quote(op.value), ")");
      break;
  }
  switch (op.outcome) {
    case OpOutcome::kCompleted:
      switch (op.kind) {
        case OpKind::kPut:
        case OpKind::kDelete:
          absl::StrAppend(&s, " -> ok");
          break;
        case OpKind::kGet:
          absl::StrAppend(&s, " -> ", QuoteValue(op.read));
          break;
        case OpKind::kCas:
          absl::StrAppend(&s, op.cas_succeeded ? " -> succeeded" : " -> failed");
          break;
      }
      absl::StrAppend(&s, " [invoke ", op.invoke_ns, ", complete ", op.complete_ns, "]");
      break;
    case OpOutcome::kUnknown:
      absl::StrAppend(&s, " -> unknown outcome [invoke ", op.invoke_ns, ", complete ?]");
      break;
    case OpOutcome::kFailed:
      absl::StrAppend(&s, " -> failed, not applied [invoke ", op.invoke_ns, ", complete ",
                      op.complete_ns, "]");
      break;
  }
  return s;
}

std::string CheckResult::Summary() const {
  std::string s = absl::StrCat("linearizability: ", VerdictName(verdict));
  if (!violations.empty()) {
    absl::StrAppend(&s, " violating_keys=", violations.size(), " first=",
                    Quote(violations.front().key));
  }
  if (!unknown_keys.empty()) {
    absl::StrAppend(&s, " unknown_keys=", unknown_keys.size(), " first_unknown=",
                    Quote(unknown_keys.front()));
  }
  absl::StrAppend(&s, " keys=", stats.keys, " ops=", stats.operations_total,
                  " checked=", stats.operations_checked, " steps=", stats.search_steps,
                  " max_steps_key=", stats.max_search_steps_key);
  return s;
}

namespace {

// ---------------------------------------------------------------------------------------------
// One key's sub-history in the form the search works on.

// Model states and values are interned per key: 0 is "absent", 1.. are distinct byte strings.
using ValueId = int32_t;
constexpr ValueId kAbsent = 0;
constexpr uint64_t kInfinity = std::numeric_limits<uint64_t>::max();

class ValueTable {
 public:
  ValueId Intern(const std::optional<std::string>& v) {
    if (!v.has_value()) return kAbsent;
    return ids_.try_emplace(*v, static_cast<ValueId>(ids_.size() + 1)).first->second;
  }
  size_t size() const { return ids_.size(); }  // ids 1..size() are in use

 private:
  absl::flat_hash_map<std::string, ValueId> ids_;
};

struct LocalOp {
  size_t index = 0;  // in the input history
  OpKind kind = OpKind::kGet;
  bool unknown = false;
  ValueId written = kAbsent;   // kPut: the value; kDelete: kAbsent; kCas: the new value
  ValueId expected = kAbsent;  // kCas
  ValueId read = kAbsent;      // completed kGet
  bool cas_succeeded = false;  // completed kCas
  uint64_t invoke = 0;
  uint64_t complete = 0;  // kInfinity when unknown
  // Unknown ops: the class of ops with the same effect (kind, expected, written after
  // canonicalization) and this op's rank in it by (invoke, index). See rule R3.
  size_t cls = 0;
  size_t rank = 0;
};

// The sequential specification: whether `op` can take effect in `state`, and the state after.
bool Step(const LocalOp& op, ValueId state, ValueId* next) {
  switch (op.kind) {
    case OpKind::kPut:
    case OpKind::kDelete:
      *next = op.written;
      return true;
    case OpKind::kGet:
      // Unknown gets never reach the search (they constrain nothing).
      *next = state;
      return state == op.read;
    case OpKind::kCas:
      if (state == op.expected) {
        *next = op.written;
        return op.unknown || op.cas_succeeded;
      }
      *next = state;
      return op.unknown || !op.cas_succeeded;
  }
  return false;
}

bool IsWrite(OpKind k) { return k != OpKind::kGet; }

constexpr ValueId kNoValue = -2;

// The value a completed op requires the state to hold (a get's result, a successful cas's
// expected value), or kNoValue.
ValueId ReadOf(const LocalOp& op) {
  if (op.unknown) return kNoValue;
  if (op.kind == OpKind::kGet) return op.read;
  if (op.kind == OpKind::kCas && op.cas_succeeded) return op.expected;
  return kNoValue;
}

// The value an op may write, or kNoValue.
ValueId WriteOf(const LocalOp& op) {
  if (op.kind == OpKind::kGet) return kNoValue;
  if (op.kind == OpKind::kCas && !op.unknown && !op.cas_succeeded) return kNoValue;
  return op.written;
}

constexpr size_t kNone = std::numeric_limits<size_t>::max();

// A read needs a write of its value that may take effect before the read completes: one
// invoked no later (absent is the initial state). Returns the first read (in `ops` order)
// without one and the first write of its value (kNone when there is none), or {kNone, kNone}.
// Needs no search; runs before any unknown write is pruned.
std::pair<size_t, size_t> FindUnwrittenRead(const std::vector<LocalOp>& ops, size_t num_values) {
  std::vector<size_t> first_write(num_values + 1, kNone);
  for (size_t i = 0; i < ops.size(); ++i) {
    const ValueId w = WriteOf(ops[i]);
    if (w == kNoValue) continue;
    size_t& first = first_write[w];
    if (first == kNone || ops[i].invoke < ops[first].invoke) first = i;
  }
  for (size_t i = 0; i < ops.size(); ++i) {
    const ValueId v = ReadOf(ops[i]);
    if (v == kNoValue || v == kAbsent) continue;
    const size_t first = first_write[v];
    if (first == kNone || ops[first].invoke > ops[i].complete) return {i, first};
  }
  return {kNone, kNone};
}

// Unknown-outcome writes that no operation could have observed are dropped before the search.
// A write W of value w (a put, a delete writing absent, or a cas that would write its new
// value) with an unknown outcome is dropped when, among the operations that may follow it
// (those completing at or after W's invocation, unknown ones included), none
//   - is a completed get that returned w,
//   - is a cas (any outcome) whose expected value is w,
//   - is a completed cas that failed.
// Sound and complete: take any linearization L of the sub-history with W in it. The operations
// between W and the next unconditional write must see state w: no get there (it would return
// w), no successful cas (it would expect w), no failed completed cas (excluded); only unknown
// cas ops expecting something else, which are no-ops there and may move to the end of L (their
// return is at infinity). Then nothing separates W from the next write (or the end), and
// removing W leaves a valid linearization. Conversely, dropped writes can be appended at the
// end of any linearization of the rest. The conditions only weaken as operations are removed,
// so all qualifying writes can be dropped at once. linearizability_test checks this claim
// against a brute-force oracle.
std::vector<bool> UnobservedUnknownWrites(const std::vector<LocalOp>& ops, size_t num_values) {
  // For each value: the latest completion among the operations that observe it (an unknown
  // cas completes at infinity, so it observes every later write of its expected value).
  std::vector<uint64_t> latest_observer(num_values + 1, 0);
  std::vector<bool> has_observer(num_values + 1, false);
  bool has_failed_cas = false;
  uint64_t latest_failed_cas = 0;
  auto observe = [&](ValueId v, uint64_t t) {
    if (!has_observer[v] || t > latest_observer[v]) latest_observer[v] = t;
    has_observer[v] = true;
  };
  for (const LocalOp& op : ops) {
    if (op.kind == OpKind::kGet) observe(op.read, op.complete);
    if (op.kind == OpKind::kCas) {
      observe(op.expected, op.complete);
      if (!op.unknown && !op.cas_succeeded) {
        if (!has_failed_cas || op.complete > latest_failed_cas) latest_failed_cas = op.complete;
        has_failed_cas = true;
      }
    }
  }
  std::vector<bool> drop(ops.size(), false);
  for (size_t i = 0; i < ops.size(); ++i) {
    const LocalOp& w = ops[i];
    if (!w.unknown || !IsWrite(w.kind)) continue;
    // An observer completing strictly before W's invocation precedes W in every linearization.
    if (has_observer[w.written] && latest_observer[w.written] >= w.invoke) continue;
    if (has_failed_cas && latest_failed_cas >= w.invoke) continue;
    drop[i] = true;
  }
  return drop;
}

// The memo of Lowe's algorithm: the search nodes already visited. A node is the set of
// completed ops linearized (a bitset), how many ops of each class of unknown ops are used
// (KeySearch rule R3: always the earliest-invoked ones), and the state: the model state and
// KeySearch's R1 restriction (MemoState).
//
// A node is skipped when the memo holds one with the same bitset and state and no more ops
// used in any class (it dominates: unused unknown ops only add choices, and every completion
// of the new node, with its unknown ops renamed to earlier-invoked ones of the same classes,
// is a completion of the old one, of the same length). With exact matching alone, a class of
// k interchangeable writes would multiply the nodes by up to k + 1. Dominance by a node still
// on the search stack is sound too: were the search to fail, take a visited node with a
// completion of least length; its first step leads to a node that is visited or dominated
// by a visited one, either way with a shorter completion, a contradiction.
//
// The hash of a bitset is the XOR of one random-looking word per member (Zobrist hashing),
// maintained incrementally by the search, so a lookup costs O(1) plus comparisons on a match.
class Memo {
 public:
  Memo(size_t words, size_t classes) : words_(words), classes_(classes) {}

  // Adds the node unless a visited node dominates it; false when dominated (or present).
  bool Insert(const std::vector<uint64_t>& bits, uint64_t bits_hash, uint64_t state,
              const std::vector<uint32_t>& used) {
    const uint64_t h = bits_hash ^ Mix(state + 0x51ed270b27c1f3a5ULL);
    auto it = first_.try_emplace(h, kNil).first;
    for (uint32_t e = it->second; e != kNil; e = next_[e]) {
      if (states_[e] != state ||
          !std::equal(bits.begin(), bits.end(), bits_.begin() + e * words_)) {
        continue;
      }
      const uint32_t* old = used_.data() + e * classes_;
      bool dominated = true;
      for (size_t c = 0; c < classes_ && dominated; ++c) dominated = old[c] <= used[c];
      if (dominated) return false;
    }
    const size_t e = states_.size();
    AM_CHECK(e < kNil, "memo entries ", e);
    states_.push_back(state);
    next_.push_back(it->second);
    it->second = static_cast<uint32_t>(e);
    bits_.insert(bits_.end(), bits.begin(), bits.end());
    used_.insert(used_.end(), used.begin(), used.end());
    return true;
  }

  size_t entries() const { return states_.size(); }

  // Approximate bytes held: the nodes, the chains and the hash table's slots.
  uint64_t bytes() const {
    return bits_.capacity() * sizeof(uint64_t) + used_.capacity() * sizeof(uint32_t) +
           states_.capacity() * sizeof(uint64_t) + next_.capacity() * sizeof(uint32_t) +
           first_.capacity() * (sizeof(uint64_t) + sizeof(uint32_t) + 1);
  }

  // SplitMix64's finalizer: a bijection on 64-bit words with good avalanche.
  static uint64_t Mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  static constexpr uint32_t kNil = std::numeric_limits<uint32_t>::max();
  const size_t words_;
  const size_t classes_;
  absl::flat_hash_map<uint64_t, uint32_t> first_;  // hash -> newest entry with that hash
  std::vector<uint32_t> next_;                      // entry -> older entry with that hash
  std::vector<uint64_t> states_;
  std::vector<uint64_t> bits_;  // entry e's bitset: words [e * words_, (e + 1) * words_)
  std::vector<uint32_t> used_;  // entry e's class counts: [e * classes_, (e + 1) * classes_)
};

enum class KeyVerdict { kOk, kViolation, kUnknown };

struct KeyOutcome {
  KeyVerdict verdict = KeyVerdict::kOk;
  uint64_t steps = 0;
  uint64_t memo_entries = 0;
  // kViolation, as local op ids.
  std::vector<size_t> prefix;
  size_t unplaceable = 0;
  size_t starved = kNone;  // a completed read that no remaining op can satisfy
  std::vector<size_t> concurrent;
};

// Lowe's just-in-time linearization search (Porcupine's checkSingle) over one key's ops, with
// the unknown-outcome ops kept apart so that they are tried last.
//
// The invocations and completions of the completed ops form one list sorted by time
// (invocations first at equal times, so touching intervals count as concurrent). The unknown
// ops, which never complete, are grouped into classes of interchangeable ops (R3 below), kept
// in a second list. At a search node the candidates to linearize next are the completed ops
// invoked before the first completion R left in the main list (pass 0, in list order), then
// the first unused op of each class, if it was invoked no later than R (pass 1). A candidate
// the model accepts, which the rules below allow, and whose node is not in the memo (Memo),
// is linearized: it is unlinked (Knuth's dancing links) and the walk restarts at the head.
// When the candidates run out, R can no longer be postponed and nothing can go before it:
// backtrack (undo the most recent linearization and try the candidate after it). Nothing left
// to backtrack is a violation; a main list without completed ops is success (the unknown ops
// left over may all be appended at the end, or never happen).
//
// Rules that cut the search. Each drops only nodes without a completion, or orders for which
// an equivalent order stays in the search space, so the verdict is unchanged (the brute-force
// oracle in linearizability_test checks this):
//   R1. Right after an unknown op wrote (moving the state from s to w), the next op must need
//       that write: not a blind write (put, delete), and not an op that only reads and would
//       accept s as well (a get, a failed cas). Otherwise the two could swap, or the unknown
//       write is overwritten unseen and may move to the end of the linearization (its
//       completion is at infinity). Unknown writes that no candidate needs are not tried.
//       The memo key includes s, since it changes the children of a node.
//   R2. An unknown op is not linearized where it leaves the state unchanged (a cas whose
//       comparison fails, a put of the current value): there it is a no-op, and the order
//       without it (the op moved to the end) is explored instead.
//   R3. Unknown ops with the same effect (same kind, expected value and written value, where
//       all values that no op reads or compares with count as one, since no operation can
//       tell them apart: PrepareKey) are interchangeable, so each class is used in (invoke, index) order.
//       If a linearization uses m ops of a class, the first m of the class fit in the same
//       positions, since an unknown op fits wherever a later-invoked one does.
//   R4. A completed read (a get, or a successful cas's comparison) of a value v that is not
//       the state must still find a write of v among the ops not yet linearized. A move that
//       leaves v with readers but no writer left strands them: the node has no completion.
//       This is what makes violations cheap to prove: a stale read is refuted as soon as the
//       state moves past its value, not after every order of the rest of the history.
class KeySearch {
 public:
  KeySearch(const std::vector<LocalOp>& ops, const CheckOptions& options)
      : ops_(ops), options_(options) {}

  KeyOutcome Run() {
    BuildLists();
    InitCounts();
    Memo memo(linearized_.size(), class_members_.size());
    KeyOutcome out;

    bool have_best = false;
    int pass = 0;
    size_t node = main_next_[kHead];
    size_t blocked_node = kNone;  // pass 1: the first completion left in the main list

    // Linearizes `op_id` (at `node` of the list of `pass`) when the model and the rules allow
    // and the memo has not seen the resulting node; true when it did.
    auto try_linearize = [&](size_t op_id) -> bool {
      const LocalOp& op = ops_[op_id];
      ValueId next_state;
      if (restricted_ != kFree) {  // R1
        if (IsBlindWrite(op)) return false;
        if (IsReadOnly(op) && Step(op, restricted_, &next_state)) return false;
      }
      if (!Step(op, state_, &next_state)) return false;
      if (op.unknown) {
        if (next_state == state_) return false;  // R2
        if (!SomeCandidateNeeds(state_, next_state, op.cls, blocked_node)) return false;  // R1
      }
      Count(op, -1);
      if (next_state != state_ && readers_[state_] > 0 && writers_[state_] == 0) {  // R4
        Count(op, +1);
        starved_value_ = state_;
        return false;
      }
      Toggle(op_id);
      if (op.unknown) ++used_[op.cls];
      const ValueId next_restricted = op.unknown ? state_ : kFree;
      if (!memo.Insert(linearized_, linearized_hash_, MemoState(next_state, next_restricted),
                       used_)) {
        Toggle(op_id);
        if (op.unknown) --used_[op.cls];
        Count(op, +1);
        return false;
      }
      calls_.push_back(
          Frame{pass, node, op_id, blocked_node, state_, restricted_, starved_value_});
      state_ = next_state;
      restricted_ = next_restricted;
      starved_value_ = kNoValue;
      if (op.unknown) {
        UnlinkClassIfUsedUp(node);
      } else {
        LiftMain(node);
        --completed_left_;
      }
      return true;
    };

    while (completed_left_ > 0) {
      if (out.steps >= options_.max_steps_per_key ||
          memo.bytes() > options_.max_memo_bytes_per_key) {
        out.verdict = KeyVerdict::kUnknown;
        out.memo_entries = memo.entries();
        return out;
      }
      ++out.steps;
      if (pass == 0) {
        AM_CHECK(node != main_tail_, "the main list always ends with a completion; ops=",
                 ops_.size());
        if (main_match_[node] == kNone) {  // the first completion left: on to the unknown ops
          blocked_node = node;
          pass = 1;
          node = class_next_[kHead];
          continue;
        }
        if (try_linearize(main_op_[node])) {
          node = main_next_[kHead];
        } else {
          node = main_next_[node];
        }
        continue;
      }
      if (node != class_tail_) {
        const size_t head = ClassHead(node);
        if (ops_[head].invoke <= ops_[main_op_[blocked_node]].complete && try_linearize(head)) {
          pass = 0;
          node = main_next_[kHead];
          blocked_node = kNone;
        } else {
          node = class_next_[node];
        }
        continue;
      }
      // Every candidate failed: the op completing at blocked_node cannot be placed here.
      if (!have_best || calls_.size() > out.prefix.size()) {
        have_best = true;
        out.prefix.clear();
        for (const Frame& f : calls_) out.prefix.push_back(f.op);
        out.unplaceable = main_op_[blocked_node];
        out.starved = starved_value_ == kNoValue ? kNone : FirstReaderLeft(starved_value_);
      }
      if (calls_.empty()) {
        out.verdict = KeyVerdict::kViolation;
        out.memo_entries = memo.entries();
        FillConcurrent(&out);
        return out;
      }
      const Frame top = calls_.back();
      calls_.pop_back();
      const LocalOp& undone = ops_[top.op];
      state_ = top.state_before;
      restricted_ = top.restricted_before;
      starved_value_ = top.starved_before;
      Count(undone, +1);
      Toggle(top.op);
      pass = top.pass;
      blocked_node = top.blocked_node;
      if (top.pass == 0) {
        UnliftMain(top.node);
        ++completed_left_;
        node = main_next_[top.node];
      } else {
        RelinkClassIfUsedUp(top.node);
        --used_[undone.cls];
        node = class_next_[top.node];
      }
    }
    out.verdict = KeyVerdict::kOk;
    out.memo_entries = memo.entries();
    return out;
  }

 private:
  static constexpr size_t kHead = 0;    // the head sentinel of both lists
  static constexpr ValueId kFree = -1;  // restricted_ when R1 does not apply

  struct Frame {
    int pass;             // 0: `node` is in the main list; 1: in the class list
    size_t node;          // the linearized op's invocation node, or its class's node
    size_t op;            // the linearized op
    size_t blocked_node;  // pass 1: the main-list completion that bounded the candidates
    ValueId state_before;
    ValueId restricted_before;
    ValueId starved_before;
  };

  static uint64_t MemoState(ValueId state, ValueId restricted) {
    AM_CHECK(state >= 0, "value id ", state);
    AM_CHECK(restricted >= kFree, "value id ", restricted);
    return uint64_t{static_cast<uint32_t>(state)} |
           uint64_t{static_cast<uint32_t>(restricted + 1)} << 32;
  }

  static bool IsBlindWrite(const LocalOp& op) {
    return op.kind == OpKind::kPut || op.kind == OpKind::kDelete;
  }
  // Completed ops that never change the state.
  static bool IsReadOnly(const LocalOp& op) {
    return !op.unknown &&
           (op.kind == OpKind::kGet || (op.kind == OpKind::kCas && !op.cas_succeeded));
  }

  // Whether `op`, placed right after an unknown write moved the state from `from` to `to`,
  // could not have been placed before it (R1).
  static bool Needs(const LocalOp& op, ValueId from, ValueId to) {
    if (IsBlindWrite(op)) return false;
    if (op.kind == OpKind::kCas && op.unknown) return op.expected == to && op.written != to;
    if (op.kind == OpKind::kGet) return op.read == to;
    if (op.cas_succeeded) return op.expected == to;
    // A failed cas: its comparison fails in `to` (!= from) but would have held in `from`.
    return op.expected == from;
  }

  // Whether some candidate other than the ops of class `cls` needs an unknown write from
  // `from` to `to` (R1). The candidates are those of the current node: an unknown op does not
  // change the main list, and the next op of class `cls` could not follow its predecessor.
  bool SomeCandidateNeeds(ValueId from, ValueId to, size_t cls, size_t blocked_node) const {
    for (size_t n = main_next_[kHead]; main_match_[n] != kNone; n = main_next_[n]) {
      if (Needs(ops_[main_op_[n]], from, to)) return true;
    }
    const uint64_t limit = ops_[main_op_[blocked_node]].complete;
    for (size_t n = class_next_[kHead]; n != class_tail_; n = class_next_[n]) {
      if (n - 1 == cls) continue;
      const LocalOp& head = ops_[ClassHead(n)];
      if (head.invoke <= limit && Needs(head, from, to)) return true;
    }
    return false;
  }

  // The completed read of `v` not yet linearized that was invoked first (for explanations).
  size_t FirstReaderLeft(ValueId v) const {
    size_t best = kNone;
    for (size_t i = 0; i < ops_.size(); ++i) {
      if (ReadOf(ops_[i]) != v || IsLinearized(i)) continue;
      if (best == kNone || ops_[i].invoke < ops_[best].invoke) best = i;
    }
    return best;
  }

  void InitCounts() {
    ValueId max_value = kAbsent;
    for (const LocalOp& op : ops_) max_value = std::max({max_value, op.written, op.expected, op.read});
    readers_.assign(max_value + 1, 0);
    writers_.assign(max_value + 1, 0);
    bit_.assign(ops_.size(), kNone);
    completed_left_ = 0;
    for (size_t i = 0; i < ops_.size(); ++i) {
      Count(ops_[i], +1);
      if (!ops_[i].unknown) bit_[i] = completed_left_++;
    }
    linearized_.assign((completed_left_ + 63) / 64, 0);
    zobrist_.resize(completed_left_);
    for (size_t b = 0; b < completed_left_; ++b) {
      zobrist_[b] = Memo::Mix(0x9e3779b97f4a7c15ULL * (b + 1));
    }
    used_.assign(class_members_.size(), 0);
  }

  // Adds `delta` to the reads and writes of `op` not yet linearized (R4).
  void Count(const LocalOp& op, int delta) {
    if (const ValueId r = ReadOf(op); r != kNoValue) readers_[r] += delta;
    if (const ValueId w = WriteOf(op); w != kNoValue) writers_[w] += delta;
  }

  void Toggle(size_t op_id) {
    if (ops_[op_id].unknown) return;
    linearized_[bit_[op_id] / 64] ^= uint64_t{1} << (bit_[op_id] % 64);
    linearized_hash_ ^= zobrist_[bit_[op_id]];
  }

  bool IsLinearized(size_t completed_op) const {
    AM_CHECK(!ops_[completed_op].unknown, "op ", completed_op, " has an unknown outcome");
    return linearized_[bit_[completed_op] / 64] >> (bit_[completed_op] % 64) & 1;
  }

  // Main list: node 0 is the head sentinel, 1..2c the completed ops' invocations and
  // completions in time order, 2c+1 the tail sentinel. Class list: node 0 the head, 1..k the
  // classes of unknown ops (LocalOp::cls + 1) while they have unused ops, k+1 the tail.
  void BuildLists() {
    struct Event {
      uint64_t time;
      bool is_completion;
      size_t op;
    };
    std::vector<Event> events;
    for (size_t i = 0; i < ops_.size(); ++i) {
      if (ops_[i].unknown) {
        if (ops_[i].cls >= class_members_.size()) class_members_.resize(ops_[i].cls + 1);
        std::vector<size_t>& members = class_members_[ops_[i].cls];
        if (members.size() <= ops_[i].rank) members.resize(ops_[i].rank + 1, kNone);
        members[ops_[i].rank] = i;
        continue;
      }
      events.push_back(Event{ops_[i].invoke, false, i});
      events.push_back(Event{ops_[i].complete, true, i});
    }
    std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
      return std::tie(a.time, a.is_completion, a.op) < std::tie(b.time, b.is_completion, b.op);
    });

    main_tail_ = events.size() + 1;
    main_prev_.assign(main_tail_ + 1, kNone);
    main_next_.assign(main_tail_ + 1, kNone);
    main_match_.assign(main_tail_ + 1, kNone);
    main_op_.assign(main_tail_ + 1, kNone);
    std::vector<size_t> call_node(ops_.size(), kNone);
    for (size_t i = 0; i < events.size(); ++i) {
      const size_t node = i + 1;
      main_op_[node] = events[i].op;
      if (!events[i].is_completion) {
        call_node[events[i].op] = node;
      } else {
        AM_CHECK(call_node[events[i].op] != kNone, "completion sorted before invocation, op ",
                 events[i].op);
        main_match_[call_node[events[i].op]] = node;
      }
    }
    for (size_t node = 0; node < main_tail_; ++node) {
      main_next_[node] = node + 1;
      main_prev_[node + 1] = node;
    }

    class_tail_ = class_members_.size() + 1;
    class_prev_.assign(class_tail_ + 1, kNone);
    class_next_.assign(class_tail_ + 1, kNone);
    for (size_t node = 0; node < class_tail_; ++node) {
      class_next_[node] = node + 1;
      class_prev_[node + 1] = node;
    }
    for (size_t c = 0; c < class_members_.size(); ++c) {
      for (size_t k = 0; k < class_members_[c].size(); ++k) {
        AM_CHECK(class_members_[c][k] != kNone, "class ", c, " has no op of rank ", k);
        if (k > 0) {
          AM_CHECK(ops_[class_members_[c][k - 1]].invoke <= ops_[class_members_[c][k]].invoke,
                   "class ", c, " ranks out of invocation order");
        }
      }
    }
  }

  // Unlinks an invocation and its completion. The unlinked nodes keep their own links, so
  // UnliftMain of the most recent LiftMain still in effect restores the list exactly.
  void LiftMain(size_t call) {
    const size_t ret = main_match_[call];
    main_next_[main_prev_[call]] = main_next_[call];
    main_prev_[main_next_[call]] = main_prev_[call];
    main_next_[main_prev_[ret]] = main_next_[ret];
    main_prev_[main_next_[ret]] = main_prev_[ret];
  }

  void UnliftMain(size_t call) {
    const size_t ret = main_match_[call];
    main_next_[main_prev_[ret]] = ret;
    main_prev_[main_next_[ret]] = ret;
    main_next_[main_prev_[call]] = call;
    main_prev_[main_next_[call]] = call;
  }

  // The first unused op of the class at `node` (a class stays listed while it has one).
  size_t ClassHead(size_t node) const { return class_members_[node - 1][used_[node - 1]]; }

  // After the class head was used: a class without unused ops leaves the list.
  void UnlinkClassIfUsedUp(size_t node) {
    if (used_[node - 1] == class_members_[node - 1].size()) {
      class_next_[class_prev_[node]] = class_next_[node];
      class_prev_[class_next_[node]] = class_prev_[node];
    }
  }

  // Before the last used op of the class is given back.
  void RelinkClassIfUsedUp(size_t node) {
    if (used_[node - 1] == class_members_[node - 1].size()) {
      class_next_[class_prev_[node]] = node;
      class_prev_[class_next_[node]] = node;
    }
  }

  // Ops outside the prefix that were invoked no later than the unplaceable op completed, by
  // invocation time.
  void FillConcurrent(KeyOutcome* out) const {
    std::vector<bool> in_prefix(ops_.size(), false);
    for (size_t id : out->prefix) in_prefix[id] = true;
    const uint64_t deadline = ops_[out->unplaceable].complete;
    std::vector<std::pair<uint64_t, size_t>> found;
    for (size_t id = 0; id < ops_.size(); ++id) {
      if (in_prefix[id] || id == out->unplaceable || ops_[id].invoke > deadline) continue;
      found.emplace_back(ops_[id].invoke, id);
    }
    std::sort(found.begin(), found.end());
    for (const auto& f : found) out->concurrent.push_back(f.second);
  }

  const std::vector<LocalOp>& ops_;
  const CheckOptions& options_;

  // The search node.
  ValueId state_ = kAbsent;
  ValueId restricted_ = kFree;  // R1: after an unknown write, the state before it
  std::vector<uint64_t> linearized_;  // completed ops linearized, by bit_ number
  uint64_t linearized_hash_ = 0;      // Zobrist hash of linearized_
  std::vector<uint32_t> used_;        // class -> its ops linearized (R3: the first by rank)
  size_t completed_left_ = 0;
  std::vector<int32_t> readers_;  // value -> completed reads of it not yet linearized (R4)
  std::vector<int32_t> writers_;  // value -> possible writes of it not yet linearized (R4)
  std::vector<Frame> calls_;      // the linearization so far
  ValueId starved_value_ = kNoValue;  // a value R4 protected at this node (explanations)

  std::vector<size_t> bit_;  // completed op -> its bit in linearized_
  std::vector<uint64_t> zobrist_;

  size_t main_tail_ = 0;
  std::vector<size_t> main_prev_, main_next_;
  std::vector<size_t> main_match_;  // invocation node -> its completion node; kNone otherwise
  std::vector<size_t> main_op_;     // node -> local op id
  std::vector<std::vector<size_t>> class_members_;  // class -> local op ids by rank
  size_t class_tail_ = 0;
  std::vector<size_t> class_prev_, class_next_;
};

// One key's ops (indices into `history`) for the search: values interned, unobserved unknown
// writes pruned (when enabled), unobserved written values merged into kJunk, and the unknown
// ops sorted into classes of interchangeable ops (rule R3 of KeySearch).
struct PreparedKey {
  std::vector<LocalOp> ops;  // for the search
  uint64_t pruned = 0;       // unknown writes dropped
  // A read FindUnwrittenRead refutes, and the first write of its value, as history indices
  // (kNone when none); the search is then not needed.
  size_t unwritten_read = kNone;
  size_t first_write = kNone;
};

PreparedKey PrepareKey(const std::vector<Operation>& history, const std::vector<size_t>& indices,
                       const CheckOptions& options) {
  PreparedKey out;
  ValueTable values;
  std::vector<LocalOp> all;
  all.reserve(indices.size());
  for (size_t i : indices) {
    const Operation& op = history[i];
    LocalOp l;
    l.index = i;
    l.kind = op.kind;
    l.unknown = op.outcome == OpOutcome::kUnknown;
    l.invoke = op.invoke_ns;
    l.complete = l.unknown ? kInfinity : op.complete_ns;
    switch (op.kind) {
      case OpKind::kPut:
        l.written = values.Intern(op.value);
        break;
      case OpKind::kDelete:
        l.written = kAbsent;
        break;
      case OpKind::kGet:
        l.read = values.Intern(op.read);
        break;
      case OpKind::kCas:
        l.expected = values.Intern(op.expected);
        l.written = values.Intern(op.value);
        l.cas_succeeded = op.cas_succeeded;
        break;
    }
    all.push_back(l);
  }

  if (const auto [read, write] = FindUnwrittenRead(all, values.size()); read != kNone) {
    out.unwritten_read = all[read].index;
    if (write != kNone) out.first_write = all[write].index;
  }

  std::vector<LocalOp>& ops = out.ops;
  if (options.prune_unobserved_unknown_writes) {
    const std::vector<bool> drop = UnobservedUnknownWrites(all, values.size());
    for (size_t k = 0; k < all.size(); ++k) {
      if (drop[k]) {
        ++out.pruned;
      } else {
        ops.push_back(all[k]);
      }
    }
  } else {
    ops = std::move(all);
  }

  // A value that no op reads or compares with cannot be told apart from any other such value:
  // the model only ever compares the state with reads and expected values.
  const ValueId junk = static_cast<ValueId>(values.size() + 1);
  std::vector<bool> observed(values.size() + 1, false);
  observed[kAbsent] = true;
  for (const LocalOp& l : ops) {
    if (l.kind == OpKind::kGet) observed[l.read] = true;
    if (l.kind == OpKind::kCas) observed[l.expected] = true;
  }
  for (LocalOp& l : ops) {
    if (!observed[l.written]) l.written = junk;
  }

  // Classes of unknown ops with the same effect; ranks by (invoke, index).
  std::vector<size_t> unknown;
  for (size_t k = 0; k < ops.size(); ++k) {
    if (ops[k].unknown) unknown.push_back(k);
  }
  std::sort(unknown.begin(), unknown.end(), [&](size_t a, size_t b) {
    return std::make_pair(ops[a].invoke, a) < std::make_pair(ops[b].invoke, b);
  });
  std::map<std::tuple<OpKind, ValueId, ValueId>, std::pair<size_t, size_t>> classes;  // -> id, size
  for (size_t k : unknown) {
    LocalOp& l = ops[k];
    const ValueId expected = l.kind == OpKind::kCas ? l.expected : kAbsent;
    auto it = classes.try_emplace(std::make_tuple(l.kind, expected, l.written), classes.size(), 0)
                  .first;
    l.cls = it->second.first;
    l.rank = it->second.second++;
  }
  return out;
}

// The state after `prefix` (history indices of a valid linearization), applied in order.
std::optional<std::string> Replay(const std::vector<Operation>& history,
                                  const std::vector<size_t>& prefix) {
  std::optional<std::string> state;
  for (size_t i : prefix) {
    const Operation& op = history[i];
    switch (op.kind) {
      case OpKind::kPut:
        state = op.value;
        break;
      case OpKind::kDelete:
        state.reset();
        break;
      case OpKind::kGet:
        break;
      case OpKind::kCas:
        // A cas in a linearization either succeeded there or is a failed completed one.
        if (state == op.expected) state = op.value;
        break;
    }
  }
  return state;
}

std::string Explain(const std::vector<Operation>& history, const Violation& v, size_t key_ops,
                    size_t shown_max) {
  std::string s;
  auto line = [&](size_t i) {
    absl::StrAppend(&s, "    op #", i, " ", DescribeOperation(history[i]), "\n");
  };
  if (v.unwritten_read) {
    const Operation& op = history[v.unplaceable_op];
    absl::StrAppend(&s, "linearizability violation on key ", Quote(v.key), ": op #",
                    v.unplaceable_op, op.kind == OpKind::kGet ? " reads " : " compares with ",
                    QuoteValue(op.kind == OpKind::kGet ? op.read : op.expected));
    if (!v.first_write.has_value()) {
      absl::StrAppend(&s, ", which no operation on this key writes\n");
      line(v.unplaceable_op);
    } else {
      absl::StrAppend(&s, ", which is first written by op #", *v.first_write,
                      ", invoked after the read completed\n");
      line(v.unplaceable_op);
      line(*v.first_write);
    }
    return s;
  }
  absl::StrAppend(&s, "linearizability violation on key ", Quote(v.key), " (", key_ops,
                  " operations checked): no linearization exists; the search got furthest with ",
                  v.linearized_prefix.size(), ", then op #", v.unplaceable_op,
                  " could not be placed\n");
  const size_t n = v.linearized_prefix.size();
  const size_t shown = std::min(n, shown_max);
  absl::StrAppend(&s, "  longest linearizable prefix found, in linearization order (", n,
                  " ops");
  if (shown < n) absl::StrAppend(&s, ", the last ", shown, " shown");
  absl::StrAppend(&s, "):\n");
  if (n == 0) absl::StrAppend(&s, "    (none)\n");
  for (size_t k = n - shown; k < n; ++k) line(v.linearized_prefix[k]);
  absl::StrAppend(&s, "  state after the prefix: ", QuoteValue(v.state_after_prefix), "\n");
  absl::StrAppend(&s, "  cannot be placed next (it must take effect before it completes):\n");
  line(v.unplaceable_op);
  if (v.starved_read.has_value()) {
    absl::StrAppend(&s,
                    "  and moving the state on from the prefix would make this read impossible "
                    "(no operation left can write the value it needs):\n");
    line(*v.starved_read);
  }
  const size_t c = v.concurrent_ops.size();
  const size_t c_shown = std::min(c, shown_max);
  absl::StrAppend(&s, "  other unlinearized ops invoked before it completed (", c,
                  c_shown < c ? absl::StrCat(", the first ", c_shown, " shown") : "", "):\n");
  if (c == 0) absl::StrAppend(&s, "    (none)\n");
  for (size_t k = 0; k < c_shown; ++k) line(v.concurrent_ops[k]);
  return s;
}

}  // namespace

absl::StatusOr<CheckResult> CheckLinearizability(const std::vector<Operation>& history,
                                                 const CheckOptions& options) {
  CheckResult result;
  CheckStats& stats = result.stats;
  stats.operations_total = history.size();

  // Partition by key; std::map keeps the keys, and so the result, in a deterministic order.
  std::map<absl::string_view, std::vector<size_t>> by_key;
  for (size_t i = 0; i < history.size(); ++i) {
    const Operation& op = history[i];
    if (op.outcome == OpOutcome::kCompleted && op.complete_ns < op.invoke_ns) {
      return absl::InvalidArgumentError(absl::StrCat(
          "op #", i, " completes before it is invoked: ", DescribeOperation(op)));
    }
    if (op.outcome == OpOutcome::kFailed) {
      ++stats.dropped_failed;
      continue;
    }
    if (op.outcome == OpOutcome::kUnknown && op.kind == OpKind::kGet) {
      ++stats.dropped_unknown_gets;
      continue;
    }
    by_key[op.key].push_back(i);
  }

  for (const auto& [key, indices] : by_key) {
    const PreparedKey prepared = PrepareKey(history, indices, options);
    const std::vector<LocalOp>& ops = prepared.ops;
    stats.pruned_unknown_writes += prepared.pruned;
    if (ops.empty()) continue;
    ++stats.keys;
    stats.operations_checked += ops.size();

    if (prepared.unwritten_read != kNone) {
      ++stats.keys_violating;
      Violation v;
      v.key = std::string(key);
      v.unplaceable_op = prepared.unwritten_read;
      v.starved_read = prepared.unwritten_read;
      v.unwritten_read = true;
      if (prepared.first_write != kNone) v.first_write = prepared.first_write;
      v.explanation = Explain(history, v, ops.size(), options.explanation_ops_max);
      result.violations.push_back(std::move(v));
      continue;
    }

    KeySearch search(ops, options);
    const KeyOutcome out = search.Run();
    stats.search_steps += out.steps;
    stats.max_search_steps_key = std::max(stats.max_search_steps_key, out.steps);
    stats.memo_entries += out.memo_entries;
    switch (out.verdict) {
      case KeyVerdict::kOk:
        break;
      case KeyVerdict::kUnknown:
        ++stats.keys_unknown;
        result.unknown_keys.emplace_back(key);
        break;
      case KeyVerdict::kViolation: {
        ++stats.keys_violating;
        Violation v;
        v.key = std::string(key);
        for (size_t id : out.prefix) v.linearized_prefix.push_back(ops[id].index);
        v.state_after_prefix = Replay(history, v.linearized_prefix);
        v.unplaceable_op = ops[out.unplaceable].index;
        if (out.starved != kNone) v.starved_read = ops[out.starved].index;
        for (size_t id : out.concurrent) v.concurrent_ops.push_back(ops[id].index);
        v.explanation = Explain(history, v, ops.size(), options.explanation_ops_max);
        result.violations.push_back(std::move(v));
        break;
      }
    }
  }

  if (!result.violations.empty()) {
    result.verdict = Verdict::kViolation;
  } else if (!result.unknown_keys.empty()) {
    result.verdict = Verdict::kUnknown;
  } else {
    result.verdict = Verdict::kOk;
  }
  return result;
}

}  // namespace amaters::sim::checker
