// `qprune ablate-direction CKPT --suppress-text A --preserve-text B --layer L -o OUT`: the
// directional-ablation baseline of behaviour-targeted pruning (Arditi et al. 2024; library:
// include/qprune/directional_ablation.hpp, docs/pruning_math.md 11.6). The difference of the mean
// residual streams on A and B after layer L is projected out of every residual-stream writer.
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/interrupt.hpp"
#include "cli/output_guard.hpp"
#include "cli/report.hpp"
#include "cli/token_input.hpp"
#include "cli/validators.hpp"
#include "qprune/checkpoint.hpp"
#include "qprune/directional_ablation.hpp"
#include "qprune/error.hpp"
#include "qprune/transformer.hpp"

namespace qprune::cli {
namespace {

struct AblateOptions {
  std::string checkpoint;
  std::string suppress_text;
  std::string preserve_text;
  int layer = -1;
  std::int64_t context = 256;
  std::int64_t tokens = 0;
  std::string output;
  bool overwrite = false;
  bool json = false;
};

int run_ablate(const AblateOptions& opts) {
  (void)install_interrupt_handler();
  guard_outputs({},
                {{"checkpoint", opts.checkpoint},
                 {"--suppress-text", opts.suppress_text},
                 {"--preserve-text", opts.preserve_text}},
                {{"--output", opts.output}});
  const Checkpoint ckpt = Checkpoint::open(opts.checkpoint);
  const Transformer model(ckpt);
  TokenInput a, b;
  a.text = opts.suppress_text;
  b.text = opts.preserve_text;
  const std::vector<std::int32_t> ids_a = read_tokens(ckpt, a);
  const std::vector<std::int32_t> ids_b = read_tokens(ckpt, b);
  for (const auto& [ids, path] :
       {std::pair{&ids_a, &opts.suppress_text}, std::pair{&ids_b, &opts.preserve_text}})
    if (ids->empty()) throw InvalidArgument(*path + ": empty text, no residual stream to average");
  AblationOptions ao;
  ao.layer = opts.layer;
  ao.context = opts.context;
  ao.max_tokens = opts.tokens;
  const AblationDirection d = difference_of_means_direction(model, ids_a, ids_b, ao);
  CheckpointEdits edits = directional_ablation_edits(ckpt, d.direction);
  CheckpointWriteOptions wo;
  wo.overwrite = opts.overwrite;
  write_checkpoint(ckpt, opts.output, edits, wo);

  Report r("ablate-direction");
  r.add("Checkpoint", "checkpoint", opts.checkpoint);
  r.add("Suppressed text", "suppress_text", opts.suppress_text);
  r.add("Preserved text", "preserve_text", opts.preserve_text);
  r.add("Layer", "layer", opts.layer);
  r.add("Suppressed tokens", "suppress_tokens", d.suppress_tokens);
  r.add("Preserved tokens", "preserve_tokens", d.preserve_tokens);
  r.add("Difference norm", "difference_norm", d.difference_norm);
  r.add("Suppressed mean norm", "suppress_mean_norm", d.suppress_mean.norm());
  r.add("Preserved mean norm", "preserve_mean_norm", d.preserve_mean.norm());
  const std::vector<std::string> names = residual_writer_names(ckpt);
  r.add("Tensors edited", "tensors_edited", static_cast<int>(names.size()));
  r.add("Tied embeddings", "tied_embeddings", ckpt.config().tie_word_embeddings);
  r.add("Output", "output", opts.output);
  r.print(std::cout, opts.json);
  return 0;
}

}  // namespace

void setup_ablate_direction(CLI::App& app, CommandResult& result) {
  auto opts = std::make_shared<AblateOptions>();
  CLI::App* sub = app.add_subcommand(
      "ablate-direction",
      "Project the difference-of-means residual direction of two texts out of the weights "
      "(directional ablation, a behaviour-suppression baseline)");
  sub->add_option("checkpoint", opts->checkpoint, "checkpoint folder")->required();
  sub->add_option("--suppress-text", opts->suppress_text, "text of the behaviour A to remove")
      ->required();
  sub->add_option("--preserve-text", opts->preserve_text, "text of the behaviour B to keep")
      ->required();
  sub->add_option("--layer", opts->layer,
                  "decoder layer whose output residual stream gives the direction")
      ->required()
      ->check(non_negative());
  sub->add_option("--context", opts->context, "window length in tokens")
      ->check(positive())
      ->capture_default_str();
  sub->add_option("--tokens", opts->tokens, "at most this many tokens of each text (0: all)")
      ->check(non_negative());
  sub->add_option("-o,--output", opts->output, "edited checkpoint folder to write")->required();
  sub->add_flag("--overwrite", opts->overwrite, "replace an existing output folder");
  sub->add_flag("--json", opts->json, "print the report as JSON");
  sub->footer(
      "r = (mu_A - mu_B) / ||mu_A - mu_B|| of the residual stream after --layer, averaged over all "
      "tokens of each text (windows of --context tokens). Every o_proj and down_proj weight (and "
      "bias) becomes (I - r r^T) W, the token embedding E (I - r r^T): no layer can write along r "
      "any more. With tied embeddings the unembedding changes with the embedding. Tensors keep "
      "their dtype (BF16 rounding leaves a small component along r). Arditi et al. 2024; "
      "docs/pruning_math.md section 11.6.");
  sub->callback([opts, &result] { result.exit_code = run_ablate(*opts); });
}

}  // namespace qprune::cli
