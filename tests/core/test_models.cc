#include "test_models.h"

#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>

#include "quantd/core/onnx/onnx_types.h"

namespace quantd::testing {

onnx::TensorProto RawTensor(const std::string& name, int32_t type, std::vector<int64_t> dims,
                            const std::string& raw) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(type);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(raw);
  return t;
}

onnx::TensorProto FloatTensor(const std::string& name, std::vector<int64_t> dims,
                              const std::vector<float>& values) {
  return RawTensor(
      name, core::kOnnxFloat, std::move(dims),
      std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
}

onnx::ValueInfoProto Value(const std::string& name, int32_t elem_type, std::vector<int64_t> dims) {
  onnx::ValueInfoProto v;
  v.set_name(name);
  auto* tt = v.mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem_type);
  for (int64_t d : dims) tt->mutable_shape()->add_dim()->set_dim_value(d);
  return v;
}

onnx::NodeProto* AddNode(onnx::GraphProto* g, const std::string& op, const std::string& name,
                         std::vector<std::string> inputs, std::vector<std::string> outputs) {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (auto& i : inputs) n->add_input(i);
  for (auto& o : outputs) n->add_output(o);
  return n;
}

onnx::ModelProto SmallMlp() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("mlp");
  *g->add_input() = Value("x", core::kOnnxFloat, {1, 4});
  *g->add_output() = Value("y", core::kOnnxFloat, {1, 3});
  *g->add_initializer() = FloatTensor("W", {4, 3}, RandomFloats(12, 1));
  *g->add_initializer() = FloatTensor("b", {3}, {0.5f, -0.25f, 1.0f});
  AddNode(g, "MatMul", "matmul", {"x", "W"}, {"mm"});
  AddNode(g, "Add", "add", {"mm", "b"}, {"sum"});
  AddNode(g, "Relu", "relu", {"sum"}, {"act"});
  AddNode(g, "Sigmoid", "sigmoid", {"act"}, {"y"});
  *g->add_value_info() = Value("mm", core::kOnnxFloat, {1, 3});
  return m;
}

std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  char* p = ::mkdtemp(tmpl.data());
  if (p == nullptr) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

void WriteModel(const onnx::ModelProto& proto, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  if (!proto.SerializeToOstream(&out)) throw std::runtime_error("cannot write " + path);
}

onnx::ModelProto ReadModelProto(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  onnx::ModelProto m;
  if (!m.ParseFromIstream(&in)) throw std::runtime_error("cannot parse " + path);
  return m;
}

std::vector<float> RandomFloats(size_t n, uint32_t seed, float scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

int CountOps(const onnx::GraphProto& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.node()) n += node.op_type() == op;
  return n;
}

const onnx::NodeProto* FindNode(const onnx::GraphProto& g, const std::string& name) {
  for (const auto& n : g.node()) {
    if (n.name() == name) return &n;
  }
  return nullptr;
}

const onnx::NodeProto* NodeOfType(const onnx::GraphProto& g, const std::string& op) {
  for (const auto& n : g.node()) {
    if (n.op_type() == op) return &n;
  }
  return nullptr;
}

const onnx::TensorProto* Init(const onnx::GraphProto& g, const std::string& name) {
  for (const auto& t : g.initializer()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

}  // namespace quantd::testing
