// ContextScheduler: the global stage of Block Transformer generation. It owns
// the sessions and the only long-lived KV cache (one entry per block, in a
// bounded page pool), and batches block-decoder work across sessions: prompt
// prefill, split into chunks when long, and one step per decoded block.
// Each forward pass turns the sessions that reached a block boundary into
// BlockJobs for the local stage; their decoded tokens come back through
// CompleteBlock().
//
// Sessions wait in FIFO order until the cache can hold their whole
// generation (prompt blocks plus generated blocks), so an admitted session
// never runs out of memory midway. A session's pages are freed the moment
// it finishes, fails or is cancelled.
//
// Pipeline groups. When the blocks are decoded elsewhere (the context
// service's token workers), stepping every session the moment its block
// comes back leaves the two stages waiting for each other and splits the
// workers' batches into fragments (each worker streams the whole vocabulary
// matrix per token step, however few rows it has). With pipeline_groups
// N >= 2, admitted sessions are spread over N groups and one Step() advances
// one group only, once all of that group's blocks are back: while one
// group's blocks are at the workers, the block decoder runs another group,
// and each step's blocks leave together as one batch. A group steps without
// a straggler (a retried block) once that block is group_wait_s later than
// the group's returned blocks took: the ready sessions wait group_wait_s for
// a block sent with theirs, and longer for one sent after theirs. Prompts
// never wait: a group with blocks out may still step its prompts alone, and
// the group then waits for their first blocks (sent later, but not late),
// so it steps whole again. (At start-up a group's prompts are prefilled over
// several steps; a wait counted from the first ready session stepped the
// early blocks without the later ones.) Groups with work step in turn.
// N <= 1: every ready session steps at once (the in-process engine, which
// decodes every block before the next step).
//
// Knows nothing of threads or transports: the in-process engine and the
// context service each drive it from one thread. Time comes from
// Options::clock, so tests control it.
#ifndef BLOCKSERVE_SHARED_ENGINE_CONTEXT_SCHEDULER_H_
#define BLOCKSERVE_SHARED_ENGINE_CONTEXT_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/backend.h"
#include "shared/engine/block_job.h"
#include "shared/engine/request.h"
#include "shared/model/block_decoder.h"
#include "shared/model/kv_cache.h"

namespace blockserve {

class ContextScheduler {
 public:
  struct Options {
    int64_t kv_cache_bytes = int64_t{256} << 20;  // block KV memory budget
    int page_size = 16;                           // blocks per KV page
    int max_sessions = 256;                       // admitted (in the cache) at once
    int max_step_blocks = 256;                    // block rows per forward pass
    DType kv_dtype = DType::kF32;                 // block KV entries: F32 or F16
    int pipeline_groups = 1;                      // see the class comment
    double group_wait_s = 0.05;                   // straggler bound of a group
    std::function<double()> clock;                // seconds; empty: steady clock
  };

  struct Stats {
    int waiting_sessions = 0;
    int active_sessions = 0;
    int decoding_blocks = 0;  // jobs handed out and not yet completed
    int64_t kv_used_bytes = 0;
    int64_t kv_capacity_bytes = 0;
    int last_step_blocks = 0;
    int pipeline_groups = 1;
    // Steps that left blocks of their group behind (group_wait_s passed).
    int64_t straggler_steps = 0;
  };

  // What one Step() produced.
  struct StepOutput {
    std::vector<BlockJob> jobs;              // blocks ready for token decoding
    std::vector<GenerationUpdate> failures;  // sessions that failed in this step
  };

  static absl::StatusOr<std::unique_ptr<ContextScheduler>> Create(const BlockDecoder& decoder,
                                                                  Backend& backend,
                                                                  const ModelConfig& config,
                                                                  const Options& options);

  // Queues a session. INVALID_ARGUMENT for a bad request; RESOURCE_EXHAUSTED
  // if it could never fit the cache; ALREADY_EXISTS for a duplicate id.
  absl::Status AddSession(uint64_t id, GenerationRequest request);
  // Forgets the session and frees its memory; a later result for it is ignored.
  // Returns false if it was unknown (already finished).
  bool CancelSession(uint64_t id);

  // Admits waiting sessions that fit, then runs one block-decoder forward
  // over the prefill chunks and new blocks of the admitted sessions.
  StepOutput Step();

  // Applies a decoded block and returns the update for the client, or
  // nullopt when the session is gone (cancelled) or the result is stale.
  std::optional<GenerationUpdate> CompleteBlock(BlockResult result);

  // True when Step() would do something now.
  bool HasStepWork() const;
  // With pipeline groups: the earliest time at which a group now held back
  // for its blocks at the workers may step without them (see group_wait_s);
  // nullopt when no group is held back.
  std::optional<double> NextGroupRelease() const;
  // Changes the number of pipeline groups; active sessions are spread over
  // the new groups at once (a session with a block in flight keeps it).
  void SetPipelineGroups(int groups);
  int pipeline_groups() const { return options_.pipeline_groups; }
  bool HasSessions() const { return !sessions_.empty(); }
  Stats stats() const;
  const ModelConfig& config() const { return config_; }

 private:
  enum class State { kWaiting, kPrefill, kReady, kDecoding };
  struct Session {
    uint64_t id = 0;
    GenerationRequest request;
    std::vector<int32_t> padded_prompt;  // left-padded to whole blocks
    State state = State::kWaiting;
    KvSequence kv;
    int64_t prefilled_blocks = 0;
    int32_t generated = 0;  // tokens emitted so far
    uint64_t next_block_index = 0;
    std::vector<int32_t> pending_block;  // decoded, not yet appended
    int group = 0;                       // pipeline group, set on admission
    double ready_since_s = 0;            // when it last became ready to step
    double dispatched_s = 0;             // when its last block left
  };
  // One pipeline group's admitted sessions, counted on demand.
  struct GroupCounts {
    int sessions = 0;
    int in_flight = 0;  // blocks at the token decoder
    int ready = 0;      // decoded blocks back, to append
    int prefill = 0;    // prompts (or their remaining chunks) to read
    double oldest_ready_s = 0;
    double newest_dispatch_s = 0;   // of the blocks in flight
    double ready_round_trip_s = 0;  // the slowest of the returned blocks
    // When the ready sessions may step without the blocks still out.
    double StragglerRelease(double group_wait_s) const;
  };
  // What the next grouped Step() does: one group (-1: none may step), all of
  // its work or only its prompts (its other blocks are still out).
  struct GroupPick {
    int group = -1;
    bool prefill_only = false;
    bool straggler = false;  // stepping without some of the group's blocks
  };

  ContextScheduler(const BlockDecoder& decoder, Backend& backend, const ModelConfig& config,
                   const Options& options, PagedKvCache cache)
      : decoder_(decoder),
        backend_(backend),
        config_(config),
        options_(options),
        cache_(std::move(cache)) {}

  int64_t EntriesNeeded(const Session& session) const;
  bool Grouped() const { return options_.pipeline_groups >= 2; }
  double Now() const;
  std::vector<GroupCounts> CountGroups() const;
  GroupPick PickGroup(double now) const;
  bool CanAdmit() const;
  void Admit();
  void Finish(uint64_t id);
  BlockJob MakeJob(Session& session, std::vector<float> context);

  const BlockDecoder& decoder_;
  Backend& backend_;
  ModelConfig config_;
  Options options_;
  PagedKvCache cache_;
  std::map<uint64_t, Session> sessions_;
  std::deque<uint64_t> waiting_;
  int active_sessions_ = 0;
  int decoding_blocks_ = 0;
  int last_step_blocks_ = 0;
  int last_group_ = -1;  // the group the last grouped Step() advanced
  int64_t straggler_steps_ = 0;
};

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_ENGINE_CONTEXT_SCHEDULER_H_
