#include "quantd/core/genai/tied_embedding.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "quantd/core/genai/decoder_graph.h"
#include "quantd/core/onnx/graph_utils.h"
#include "quantd/core/onnx/onnx_types.h"

namespace quantd::core::genai {
namespace {

// An int64 shape constant as an initializer (small: stored inline).
void AddShape(onnx::GraphProto* g, const std::string& name, std::vector<int64_t> dims) {
  onnx::TensorProto* t = g->add_initializer();
  t->set_name(name);
  SetInt64Tensor(t, dims);
}

}  // namespace

absl::Status ShareTiedEmbedding(OnnxModel* model, Report* report) {
  onnx::GraphProto* g = model->proto().mutable_graph();
  int gather = -1, transpose = -1;
  const onnx::NodeProto* head = nullptr;
  for (int i = 0; i < g->node_size(); ++i) {
    const onnx::NodeProto& n = g->node(i);
    if (n.name() == kEmbeddingNode) gather = i;
    if (n.name() == kEmbeddingTranspose) transpose = i;
    if (n.op_type() == "MatMulNBits" && n.output_size() == 1 && n.output(0) == "logits") {
      head = &n;
    }
  }
  if (gather < 0 || transpose < 0) return absl::OkStatus();  // not tied
  if (g->node(gather).input(0) != g->node(transpose).output(0)) return absl::OkStatus();
  if (head == nullptr) {
    report->notes.push_back(
        "tied embeddings: the LM head is not a MatMulNBits, so the embedding table stays float");
    return absl::OkStatus();
  }
  if (head->input_size() > 3 && !head->input(3).empty()) {
    report->notes.push_back(
        "tied embeddings: the LM head has zero points (asymmetric), which GatherBlockQuantized "
        "cannot share; the embedding table stays float");
    return absl::OkStatus();
  }
  const int64_t k = IntAttr(*head, "K", 0), n = IntAttr(*head, "N", 0);
  const int64_t bits = IntAttr(*head, "bits", 4), block = IntAttr(*head, "block_size", 0);
  if (k <= 0 || n <= 0 || block <= 0 || k % block != 0 || (bits != 4 && bits != 8)) {
    report->notes.push_back(absl::StrCat("tied embeddings: hidden size ", k,
                                         " is not a multiple of block_size ", block,
                                         "; the embedding table stays float"));
    return absl::OkStatus();
  }
  const std::string codes = head->input(1), scales = head->input(2);
  const std::string ids = g->node(gather).input(1), out = g->node(gather).output(0);
  AddShape(g, "/model/embed_tokens/data_shape", {n, k * bits / 8});
  AddShape(g, "/model/embed_tokens/scales_shape", {n, k / block});

  std::vector<onnx::NodeProto> nodes(3);
  nodes[0].set_op_type("Reshape");
  nodes[0].set_name("/model/embed_tokens/Reshape");
  nodes[0].add_input(codes);
  nodes[0].add_input("/model/embed_tokens/data_shape");
  nodes[0].add_output("/model/embed_tokens/Reshape/output_0");
  nodes[1].set_op_type("Reshape");
  nodes[1].set_name("/model/embed_tokens/scales/Reshape");
  nodes[1].add_input(scales);
  nodes[1].add_input("/model/embed_tokens/scales_shape");
  nodes[1].add_output("/model/embed_tokens/scales/Reshape/output_0");
  nodes[2].set_op_type("GatherBlockQuantized");
  nodes[2].set_domain("com.microsoft");
  nodes[2].set_name("/model/embed_tokens/GatherBlockQuantized");
  nodes[2].add_input(nodes[0].output(0));
  nodes[2].add_input(ids);
  nodes[2].add_input(nodes[1].output(0));
  nodes[2].add_output(out);
  SetIntAttr(&nodes[2], "bits", bits);
  SetIntAttr(&nodes[2], "block_size", block);
  SetIntAttr(&nodes[2], "gather_axis", 0);
  SetIntAttr(&nodes[2], "quantize_axis", 1);

  // Rebuild the node list: the three nodes take the Gather's place, the
  // Transpose goes; then the float table nobody reads goes too.
  const std::string table = g->node(transpose).input(0);
  google::protobuf::RepeatedPtrField<onnx::NodeProto> rebuilt;
  for (int i = 0; i < g->node_size(); ++i) {
    if (i == transpose) continue;
    if (i == gather) {
      for (onnx::NodeProto& x : nodes) *rebuilt.Add() = std::move(x);
      continue;
    }
    *rebuilt.Add() = std::move(*g->mutable_node(i));
  }
  g->mutable_node()->Swap(&rebuilt);
  bool used = false;
  for (const auto& node : g->node()) {
    for (const auto& in : node.input()) used = used || in == table;
  }
  if (!used) {
    for (int i = 0; i < g->initializer_size(); ++i) {
      if (g->initializer(i).name() == table) {
        g->mutable_initializer()->DeleteSubrange(i, 1);
        break;
      }
    }
  }
  report->notes.push_back(
      absl::StrCat("tied embeddings: the embedding reads the LM head's ", bits,
                   "-bit codes through GatherBlockQuantized (one copy of the table)"));
  return absl::OkStatus();
}

}  // namespace quantd::core::genai
