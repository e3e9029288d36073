// qprune: the command-line program. A thin shell over the library: parse, run one subcommand, map
// errors to one clear line on stderr and an exit code (cli/exit_codes.hpp).
#include <iostream>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "qprune/error.hpp"

namespace {

constexpr const char* kDescription = R"(qprune: structured pruning of neural-network checkpoints as QUBO/Ising problems,
and a toolbox to read, write, solve and compare QUBO problems.

Energy convention (everywhere in qprune):
  QUBO   minimise E(x) = offset + sum_i c_i x_i + sum_{i<j} q_ij x_i x_j,  x in {0,1}^n
  Ising  minimise E(s) = offset + sum_i h_i s_i + sum_{i<j} J_ij s_i s_j,  s in {-1,+1}^n,  x = (1+s)/2
Each pair counts once. Formats that maximise (Beasley, MQLib, Max-Cut, QPLIB 'maximize') are negated on
read, so a published maximum V appears as energy -V. See docs/formats.md.

Exit codes: 0 ok, 1 internal error, 2 bad input or usage, 3 file could not be read/written,
4 request too large for memory/time, 5 interrupted (best answer so far written).)";

}  // namespace

int main(int argc, char** argv) {
  using namespace qprune::cli;
  CLI::App app{kDescription, "qprune"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "qprune 0.1.0");
  app.get_formatter()->column_width(34);
  CommandResult result;
  setup_info(app, result);
  setup_convert(app, result);
  setup_solve(app, result);
  setup_energy(app, result);
  setup_mask(app, result);
  setup_apply(app, result);
  setup_export(app, result);
  setup_import_solution(app, result);
  setup_compare(app, result);
  setup_calibrate(app, result);
  setup_perplexity(app, result);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitBadInput;
  } catch (const qprune::ParseError& e) {
    std::cerr << "qprune: error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const qprune::InvalidArgument& e) {
    std::cerr << "qprune: error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const qprune::IoError& e) {
    std::cerr << "qprune: error: " << e.what() << "\n";
    return kExitIo;
  } catch (const qprune::ResourceError& e) {
    std::cerr << "qprune: error: " << e.what() << "\n";
    return kExitResource;
  } catch (const std::exception& e) {
    std::cerr << "qprune: internal error: " << e.what() << "\n";
    return kExitFailure;
  }
  return result.exit_code;
}
