#pragma once

// The node's CAF scheduler: CAF's work-stealing layout (one job queue per
// worker, round-robin for jobs from outside, idle workers steal) with a
// cheaper way to sleep and wake.
//
// CAF 0.17's worker, once idle, waits on a condition variable, and every
// job from a thread outside the scheduler (a socket's I/O thread, the store
// writer, the timer) locks that worker's mutex and signals the condition
// variable while it still holds the lock. A woken worker then wakes into a
// locked mutex and sleeps again on it; glibc marks a mutex retaken after a
// wait as contended, so its unlock is one more system call; and the lock
// is taken for every such job, asleep or not. At 15,000 messages a second
// the node makes half as many futex calls with the policy below
// (tools/bench/RESULTS.md, issue 3).
//
// Here an idle worker announces its sleep in an atomic word and waits on
// that word itself (a Linux futex), with no mutex: a job from outside
// looks at the word, and only when it is set does one such thread clear it
// and wake the worker, one system call. A sleeping worker still wakes
// every `work-stealing.relaxed-sleep-duration` to steal, as CAF's does;
// the other work-stealing poll settings have no effect (an idle worker
// polls its queue once and steals once before it sleeps).
//
// Header kept free of CAF's scheduler templates: only the config is needed.

#include <caf/actor_system_config.hpp>
#include <caf/fwd.hpp>

namespace parley {

/// Makes actor systems built from `cfg` use the node's scheduler (before
/// the system is constructed; the `scheduler.policy` setting is then
/// ignored).
void use_node_scheduler(caf::actor_system_config& cfg);

/// Whether `sys` runs the node's scheduler (for the startup log and tests).
bool runs_node_scheduler(caf::actor_system& sys);

} // namespace parley
