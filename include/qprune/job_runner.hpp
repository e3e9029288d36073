// How the library runs independent pieces of work: the layers of `compute_masks`, the cells of
// `run_comparison`, the text chunks of `collect_calibration_statistics`. The library describes the
// work (a job list, or an ordered sum of partial vectors) and a JobRunner decides where it runs.
// SerialJobRunner runs everything in this process; the qprune program supplies a runner that
// spreads the work over MPI processes (cli/parallel/), so the library itself never sees MPI.
//
// Contract for every runner: all processes of a run call the same function with the same
// arguments (SPMD); results reach only the coordinator; and the results never depend on the number
// of processes (jobs are seeded by their index, ordered sums add the chunks in chunk order).
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace qprune {

class JobRunner {
 public:
  virtual ~JobRunner() = default;

  /// A list of independent jobs. Each job encodes its own result as bytes, so that a runner can
  /// move it between processes.
  struct Jobs {
    std::size_t count = 0;
    /// The order in which jobs are handed out (a permutation of [0, count), most expensive first
    /// so that dynamic balancing ends evenly); empty: index order. The serial runner always runs
    /// in index order.
    std::vector<std::size_t> order;
    std::function<std::string(std::size_t)> run;    ///< job i, returns its encoded result
    std::function<std::string(std::size_t)> label;  ///< "layer 2 mlp", for error messages
    /// Called on the coordinator after each result arrived (completion order); may be empty.
    std::function<void(std::size_t, const std::string&)> done;
  };

  /// A sum of `count` partial vectors of `size` doubles each (one per chunk of the input).
  struct OrderedSum {
    std::size_t count = 0;
    std::size_t size = 0;
    /// Fills `buffer` (size doubles, zeroed) with chunk c's partial sums; runs on one process.
    std::function<void(std::size_t c, std::span<double> buffer)> partial;
    std::function<std::string(std::size_t)> label;  ///< "chunk 3 (tokens ...)", for errors
    /// Called on the coordinator after chunk c was added to the total; may be empty.
    std::function<void(std::size_t c)> added;
  };

  /// Number of processes taking part (1 for the serial runner).
  [[nodiscard]] virtual int num_processes() const = 0;
  /// True on the process that receives the results and writes the outputs.
  [[nodiscard]] virtual bool is_coordinator() const = 0;

  /// Runs every job once; returns the results by job index on the coordinator, an empty vector on
  /// the other processes. A job that throws ends the run: the serial runner rethrows, a
  /// multi-process runner reports "rank R failed on LABEL: message" and stops every process.
  [[nodiscard]] virtual std::vector<std::string> run(const Jobs& jobs) = 0;

  /// Computes every chunk's partial vector once and, on the coordinator, sets `total` (size
  /// doubles) to p_0 + p_1 + ... + p_{count-1}, added element by element in chunk order: the
  /// same bits for any number of processes. `total` is left unspecified on other processes.
  /// Errors as in run().
  virtual void ordered_sum(const OrderedSum& sum, std::span<double> total) = 0;
};

/// Runs jobs in this process, one after another in index order; the default of every option
/// struct that takes a runner. Memory of ordered_sum: `total` plus one partial buffer.
class SerialJobRunner final : public JobRunner {
 public:
  [[nodiscard]] int num_processes() const override { return 1; }
  [[nodiscard]] bool is_coordinator() const override { return true; }
  [[nodiscard]] std::vector<std::string> run(const Jobs& jobs) override;
  void ordered_sum(const OrderedSum& sum, std::span<double> total) override;
};

/// The runner to use for an option that may be null: `runner`, or a process-wide SerialJobRunner.
[[nodiscard]] JobRunner& runner_or_serial(JobRunner* runner);

}  // namespace qprune
