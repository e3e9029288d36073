// The serial JobRunner (include/qprune/job_runner.hpp): every job and every chunk in this process,
// in index order, so a run without a distributed runner behaves as a plain loop.
#include "qprune/job_runner.hpp"

#include <algorithm>

namespace qprune {

std::vector<std::string> SerialJobRunner::run(const Jobs& jobs) {
  std::vector<std::string> results(jobs.count);
  for (std::size_t i = 0; i < jobs.count; ++i) {
    results[i] = jobs.run(i);
    if (jobs.done) jobs.done(i, results[i]);
  }
  return results;
}

void SerialJobRunner::ordered_sum(const OrderedSum& sum, std::span<double> total) {
  std::fill(total.begin(), total.end(), 0.0);
  std::vector<double> buffer(sum.size);
  for (std::size_t c = 0; c < sum.count; ++c) {
    std::fill(buffer.begin(), buffer.end(), 0.0);
    sum.partial(c, buffer);
    for (std::size_t i = 0; i < sum.size; ++i) total[i] += buffer[i];
    if (sum.added) sum.added(c);
  }
}

JobRunner& runner_or_serial(JobRunner* runner) {
  static SerialJobRunner serial;
  return runner != nullptr ? *runner : serial;
}

}  // namespace qprune
