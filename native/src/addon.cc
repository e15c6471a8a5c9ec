// Node-API entry points of the flip_kernels add-on. Every kernel works in place on Float32Array views that the caller
// made of the tensors' own memory (the wasm heap): no copies. The TypeScript side (models/kernels/native/) checks shapes
// against tensors; this file checks again that every view is long enough for the sizes given, so that a wrong size is
// a JavaScript exception, never a read or write outside an array.
#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "flush_denormals.h"
#include "gemm.h"
#include "kernels.h"

namespace {

// A Float32Array with at least `need` floats, or null with *error set (naming `name`).
float* read_floats(napi_env env, napi_value value, const std::string& name, int64_t need, std::string* error) {
  bool is_typed = false;
  napi_is_typedarray(env, value, &is_typed);
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (!is_typed || napi_get_typedarray_info(env, value, &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_float32_array) {
    *error = name + ": expected a Float32Array";
    return nullptr;
  }
  if (static_cast<int64_t>(length) < need) {
    *error = name + ": has " + std::to_string(length) + " floats, needs " + std::to_string(need);
    return nullptr;
  }
  return static_cast<float*>(data);
}

// Reads a call's arguments by position; the first problem throws a JavaScript error and makes ok() false.
class Args {
 public:
  Args(napi_env env, napi_callback_info info, const char* fn, size_t expected) : env_(env), fn_(fn) {
    argc_ = kMax;
    napi_get_cb_info(env, info, &argc_, argv_, nullptr, nullptr);
    if (argc_ != expected) fail("expected " + std::to_string(expected) + " arguments, got " + std::to_string(argc_));
  }

  bool ok() const { return ok_; }

  // Fails with `message` unless the condition holds.
  void check(bool condition, const std::string& message) {
    if (ok_ && !condition) fail(message);
  }

  // A Float32Array with at least `need` elements.
  float* floats(size_t i, const char* name, int64_t need) { return ok_ ? floats_of(argv_[i], name, need) : nullptr; }

  // An Int32Array with exactly `count` elements, each in [0, limit).
  const int32_t* indices(size_t i, const char* name, int64_t count, int64_t limit) {
    if (!ok_) return nullptr;
    bool is_typed = false;
    napi_is_typedarray(env_, argv_[i], &is_typed);
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    if (!is_typed || napi_get_typedarray_info(env_, argv_[i], &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_int32_array) {
      fail(std::string(name) + ": expected an Int32Array");
      return nullptr;
    }
    if (static_cast<int64_t>(length) != count) {
      fail(std::string(name) + ": has " + std::to_string(length) + " indices, expected " + std::to_string(count));
      return nullptr;
    }
    const int32_t* v = static_cast<const int32_t*>(data);
    for (int64_t k = 0; k < count; k++) {
      if (v[k] < 0 || v[k] >= limit) {
        fail(std::string(name) + "[" + std::to_string(k) + "] = " + std::to_string(v[k]) + " is outside [0, " + std::to_string(limit) + ")");
        return nullptr;
      }
    }
    return v;
  }

  // Element j of argument i, an array of Float32Arrays (a group of weights, saved tensors or gradients).
  float* floats_in(size_t i, uint32_t j, const std::string& name, int64_t need) {
    if (!ok_) return nullptr;
    bool is_array = false;
    napi_is_array(env_, argv_[i], &is_array);
    napi_value element;
    if (!is_array || napi_get_element(env_, argv_[i], j, &element) != napi_ok) {
      fail(name + ": expected an array of Float32Arrays");
      return nullptr;
    }
    return floats_of(element, name.c_str(), need);
  }

  // null, or a Float32Array with at least `need` elements.
  float* optional_floats(size_t i, const char* name, int64_t need) {
    if (!ok_) return nullptr;
    napi_valuetype type;
    napi_typeof(env_, argv_[i], &type);
    return type == napi_null || type == napi_undefined ? nullptr : floats(i, name, need);
  }

  // The length of argument i, an array (of Float32Arrays).
  uint32_t length(size_t i, const char* name) {
    uint32_t n = 0;
    bool is_array = false;
    if (ok_ && (napi_is_array(env_, argv_[i], &is_array) != napi_ok || !is_array || napi_get_array_length(env_, argv_[i], &n) != napi_ok)) {
      fail(std::string(name) + ": expected an array of Float32Arrays");
    }
    return n;
  }

  // The element count of element j of argument i, an array of Float32Arrays.
  int64_t length_in(size_t i, uint32_t j, const std::string& name) {
    float* data = floats_in(i, j, name, 0);
    if (!data) return 0;
    napi_value element;
    napi_get_element(env_, argv_[i], j, &element);
    napi_typedarray_type type;
    size_t n = 0;
    napi_get_typedarray_info(env_, element, &type, &n, nullptr, nullptr, nullptr);
    return static_cast<int64_t>(n);
  }

  int64_t integer(size_t i, const char* name) {
    int64_t v = 0;
    if (ok_ && (napi_get_value_int64(env_, argv_[i], &v) != napi_ok || v < 0)) fail(std::string(name) + ": expected an integer >= 0");
    return v;
  }

  float number(size_t i, const char* name) {
    double v = 0;
    if (ok_ && napi_get_value_double(env_, argv_[i], &v) != napi_ok) fail(std::string(name) + ": expected a number");
    return static_cast<float>(v);
  }

  bool boolean(size_t i, const char* name) {
    bool v = false;
    if (ok_ && napi_get_value_bool(env_, argv_[i], &v) != napi_ok) fail(std::string(name) + ": expected a boolean");
    return v;
  }

 private:
  static constexpr size_t kMax = 16;

  float* floats_of(napi_value value, const char* name, int64_t need) {
    std::string error;
    float* data = read_floats(env_, value, name, need, &error);
    if (!data) fail(error);
    return data;
  }

  void fail(const std::string& message) {
    if (ok_) napi_throw_error(env_, "FLIP_NATIVE", (std::string(fn_) + ": " + message).c_str());
    ok_ = false;
  }
  napi_env env_;
  const char* fn_;
  size_t argc_;
  napi_value argv_[kMax];
  bool ok_ = true;
};

// Elements a strided batch spans: the last matrix starts at (batch - 1) * stride.
int64_t span(int64_t batch, int64_t stride, int64_t size) { return batch == 0 ? 0 : (batch - 1) * stride + size; }

// gemm(a, b, c, batch, m, n, k, transA, transB, strideA, strideB, strideC, accumulate)
napi_value Gemm(napi_env env, napi_callback_info info) {
  Args in(env, info, "gemm", 13);
  GemmShape s;
  s.batch = in.integer(3, "batch");
  s.m = in.integer(4, "m");
  s.n = in.integer(5, "n");
  s.k = in.integer(6, "k");
  s.trans_a = in.boolean(7, "transA");
  s.trans_b = in.boolean(8, "transB");
  s.stride_a = in.integer(9, "strideA");
  s.stride_b = in.integer(10, "strideB");
  s.stride_c = in.integer(11, "strideC");
  s.accumulate = in.boolean(12, "accumulate");
  const float* a = in.floats(0, "a", span(s.batch, s.stride_a, s.m * s.k));
  const float* b = in.floats(1, "b", span(s.batch, s.stride_b, s.k * s.n));
  float* c = in.floats(2, "c", span(s.batch, s.stride_c, s.m * s.n));
  if (in.ok()) gemm_batched(s, a, b, c);
  return nullptr;
}

// linearForward(x, w, bias | null, out, n, din, dout)
napi_value LinearForward(napi_env env, napi_callback_info info) {
  Args in(env, info, "linearForward", 7);
  const int64_t n = in.integer(4, "n"), din = in.integer(5, "din"), dout = in.integer(6, "dout");
  const float* x = in.floats(0, "x", n * din);
  const float* w = in.floats(1, "w", din * dout);
  const float* bias = in.optional_floats(2, "bias", dout);
  float* out = in.floats(3, "out", n * dout);
  if (in.ok()) linear_forward(x, w, bias, nullptr, out, n, din, dout);
  return nullptr;
}

// columnSums(x, sums, n, d)
napi_value ColumnSums(napi_env env, napi_callback_info info) {
  Args in(env, info, "columnSums", 4);
  const int64_t n = in.integer(2, "n"), d = in.integer(3, "d");
  const float* x = in.floats(0, "x", n * d);
  float* sums = in.floats(1, "sums", d);
  if (in.ok()) column_sums(x, sums, n, d);
  return nullptr;
}

// layerNormForward(x, gamma, beta, eps, y, xhat, rstd, n, d)
napi_value LayerNormForward(napi_env env, napi_callback_info info) {
  Args in(env, info, "layerNormForward", 9);
  const int64_t n = in.integer(7, "n"), d = in.integer(8, "d");
  const float eps = in.number(3, "eps");
  const float* x = in.floats(0, "x", n * d);
  const float* gamma = in.floats(1, "gamma", d);
  const float* beta = in.floats(2, "beta", d);
  float* y = in.floats(4, "y", n * d);
  float* xhat = in.floats(5, "xhat", n * d);
  float* rstd = in.floats(6, "rstd", n);
  if (in.ok()) layer_norm_forward(x, gamma, beta, eps, y, xhat, rstd, n, d);
  return nullptr;
}

// layerNormBackward(dy, xhat, rstd, gamma, dx, dgamma, dbeta, n, d)
napi_value LayerNormBackward(napi_env env, napi_callback_info info) {
  Args in(env, info, "layerNormBackward", 9);
  const int64_t n = in.integer(7, "n"), d = in.integer(8, "d");
  const float* dy = in.floats(0, "dy", n * d);
  const float* xhat = in.floats(1, "xhat", n * d);
  const float* rstd = in.floats(2, "rstd", n);
  const float* gamma = in.floats(3, "gamma", d);
  float* dx = in.floats(4, "dx", n * d);
  float* dgamma = in.floats(5, "dgamma", d);
  float* dbeta = in.floats(6, "dbeta", d);
  if (in.ok()) layer_norm_backward(dy, xhat, rstd, gamma, nullptr, dx, dgamma, dbeta, n, d);
  return nullptr;
}

AttentionShape attention_shape(Args& in, size_t first) {
  AttentionShape s;
  s.batch = in.integer(first, "batch");
  s.tokens = in.integer(first + 1, "tokens");
  s.heads = in.integer(first + 2, "heads");
  s.head_dim = in.integer(first + 3, "headDim");
  s.scale = in.number(first + 4, "scale");
  return s;
}

// update in one call; weightDecay holds one value per tensor; out[i] may be p[i] itself (in place).
napi_value AdamwStep(napi_env env, napi_callback_info info) {
  Args in(env, info, "adamwStep", 13);
  const uint32_t n = in.length(0, "p");
  AdamWStep s;
  s.lr = in.number(6, "lr");
  s.beta1 = in.number(7, "beta1");
  s.beta2 = in.number(8, "beta2");
  s.eps = in.number(9, "eps");
  s.c1 = in.number(10, "c1");
  s.c2 = in.number(11, "c2");
  s.v_floor = in.number(12, "vFloor");
  s.weight_decay = 0;
  const float* decay = in.floats(5, "weightDecay", n);
  std::vector<AdamWTensor> tensors(n);
  for (uint32_t t = 0; t < n && in.ok(); t++) {
    const std::string at = "[" + std::to_string(t) + "]";
    AdamWTensor& x = tensors[t];
    x.count = in.length_in(0, t, "p" + at);
    x.p = in.floats_in(0, t, "p" + at, x.count);
    x.g = in.floats_in(1, t, "g" + at, x.count);
    x.m = in.floats_in(2, t, "m" + at, x.count);
    x.v = in.floats_in(3, t, "v" + at, x.count);
    x.out = in.floats_in(4, t, "out" + at, x.count);
    if (in.ok()) x.weight_decay = decay[t];
  }
  if (in.ok()) adamw_step(s, tensors);
  return nullptr;
}

// The groups of arrays the sublayer kernels take, in this order (models/kernels/native/register.ts builds them).
const char* const kAttentionWeights[] = {"lnGamma", "lnBeta", "wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo"};
const char* const kAttentionSaved[] = {"xhat", "rstd", "q", "k", "v", "probs", "ctx"};
const char* const kMlpWeights[] = {"lnGamma", "lnBeta", "w1", "b1", "w2", "b2"};
const char* const kMlpSaved[] = {"xhat", "rstd", "u", "z"};

AttentionWeights attention_weights(Args& in, size_t arg, const int64_t sizes[10]) {
  const float* p[10];
  for (uint32_t i = 0; i < 10; i++) p[i] = in.floats_in(arg, i, std::string("weights.") + kAttentionWeights[i], sizes[i]);
  return {p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9]};
}

AttentionSaved attention_saved(Args& in, size_t arg, const int64_t sizes[7]) {
  float* p[7];
  for (uint32_t i = 0; i < 7; i++) p[i] = in.floats_in(arg, i, std::string("saved.") + kAttentionSaved[i], sizes[i]);
  return {p[0], p[1], p[2], p[3], p[4], p[5], p[6]};
}

// attentionSublayerForward(h, weights[10], keyBias | null, out, saved[7], batch, tokens, heads, headDim, scale, eps)
napi_value AttentionSublayerForward(napi_env env, napi_callback_info info) {
  Args in(env, info, "attentionSublayerForward", 11);
  const AttentionShape s = attention_shape(in, 5);
  const float eps = in.number(10, "eps");
  int64_t wsize[10], ssize[7];
  attention_sizes(s, wsize, ssize);
  const int64_t nd = s.batch * s.tokens * s.heads * s.head_dim;
  const float* h = in.floats(0, "h", nd);
  const AttentionWeights w = attention_weights(in, 1, wsize);
  const float* key_bias = in.optional_floats(2, "keyBias", s.batch * s.tokens);
  float* out = in.floats(3, "out", nd);
  const AttentionSaved saved = attention_saved(in, 4, ssize);
  if (in.ok()) attention_sublayer_forward(s, eps, h, w, key_bias, out, saved);
  return nullptr;
}

// attentionSublayerBackward(dy, weights[10], saved[7], grads[11], batch, tokens, heads, headDim, scale)
napi_value AttentionSublayerBackward(napi_env env, napi_callback_info info) {
  Args in(env, info, "attentionSublayerBackward", 9);
  const AttentionShape s = attention_shape(in, 4);
  int64_t wsize[10], ssize[7];
  attention_sizes(s, wsize, ssize);
  const int64_t nd = s.batch * s.tokens * s.heads * s.head_dim;
  const float* dy = in.floats(0, "dy", nd);
  const AttentionWeights w = attention_weights(in, 1, wsize);
  const AttentionSaved saved = attention_saved(in, 2, ssize);
  float* g[11];
  g[0] = in.floats_in(3, 0, "grads.dh", nd);
  for (uint32_t i = 0; i < 10; i++) g[i + 1] = in.floats_in(3, i + 1, std::string("grads.") + kAttentionWeights[i], wsize[i]);
  if (in.ok()) attention_sublayer_backward(s, dy, w, saved, {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10]});
  return nullptr;
}

MlpWeights mlp_weights(Args& in, size_t arg, const int64_t sizes[6]) {
  const float* p[6];
  for (uint32_t i = 0; i < 6; i++) p[i] = in.floats_in(arg, i, std::string("weights.") + kMlpWeights[i], sizes[i]);
  return {p[0], p[1], p[2], p[3], p[4], p[5]};
}

MlpSaved mlp_saved(Args& in, size_t arg, const int64_t sizes[4]) {
  float* p[4];
  for (uint32_t i = 0; i < 4; i++) p[i] = in.floats_in(arg, i, std::string("saved.") + kMlpSaved[i], sizes[i]);
  return {p[0], p[1], p[2], p[3]};
}

// mlpSublayerForward(h, weights[6], out, saved[4], n, d, m, eps)
napi_value MlpSublayerForward(napi_env env, napi_callback_info info) {
  Args in(env, info, "mlpSublayerForward", 8);
  const int64_t n = in.integer(4, "n"), d = in.integer(5, "d"), m = in.integer(6, "m");
  const float eps = in.number(7, "eps");
  int64_t wsize[6], ssize[4];
  mlp_sizes(n, d, m, wsize, ssize);
  const float* h = in.floats(0, "h", n * d);
  const MlpWeights w = mlp_weights(in, 1, wsize);
  float* out = in.floats(2, "out", n * d);
  const MlpSaved saved = mlp_saved(in, 3, ssize);
  if (in.ok()) mlp_sublayer_forward(n, d, m, eps, h, w, out, saved);
  return nullptr;
}

// mlpSublayerBackward(dy, weights[6], saved[4], grads[7], n, d, m)
napi_value MlpSublayerBackward(napi_env env, napi_callback_info info) {
  Args in(env, info, "mlpSublayerBackward", 7);
  const int64_t n = in.integer(4, "n"), d = in.integer(5, "d"), m = in.integer(6, "m");
  int64_t wsize[6], ssize[4];
  mlp_sizes(n, d, m, wsize, ssize);
  const float* dy = in.floats(0, "dy", n * d);
  const MlpWeights w = mlp_weights(in, 1, wsize);
  const MlpSaved saved = mlp_saved(in, 2, ssize);
  float* g[7];
  g[0] = in.floats_in(3, 0, "grads.dh", n * d);
  for (uint32_t i = 0; i < 6; i++) g[i + 1] = in.floats_in(3, i + 1, std::string("grads.") + kMlpWeights[i], wsize[i]);
  if (in.ok()) mlp_sublayer_backward(n, d, m, dy, w, saved, {g[0], g[1], g[2], g[3], g[4], g[5], g[6]});
  return nullptr;
}

// Reads the stacks argument of stacksForward / stacksBackward: an array of plain objects (see models/kernels/native/
// stacks.ts). The first problem throws a JavaScript error naming the field and makes ok false.
class StackReader {
 public:
  explicit StackReader(napi_env env) : env_(env) {}
  bool ok = true;

  napi_value field(napi_value obj, const char* key, const std::string& where) {
    napi_value v = nullptr;
    bool has = false;
    if (ok && (napi_has_named_property(env_, obj, key, &has) != napi_ok || !has || napi_get_named_property(env_, obj, key, &v) != napi_ok)) {
      fail(where + "." + key + ": missing");
    }
    return v;
  }

  uint32_t length(napi_value arr, const std::string& where) {
    uint32_t n = 0;
    bool is_array = false;
    if (ok && (napi_is_array(env_, arr, &is_array) != napi_ok || !is_array || napi_get_array_length(env_, arr, &n) != napi_ok)) {
      fail(where + ": expected an array");
    }
    return n;
  }

  napi_value element(napi_value arr, uint32_t i) {
    napi_value v = nullptr;
    if (ok) napi_get_element(env_, arr, i, &v);
    return v;
  }

  int64_t integer(napi_value obj, const char* key, const std::string& where) {
    int64_t v = 0;
    napi_value f = field(obj, key, where);
    if (ok && (napi_get_value_int64(env_, f, &v) != napi_ok || v < 0)) fail(where + "." + key + ": expected an integer >= 0");
    return v;
  }

  float number(napi_value obj, const char* key, const std::string& where) {
    double v = 0;
    napi_value f = field(obj, key, where);
    if (ok && napi_get_value_double(env_, f, &v) != napi_ok) fail(where + "." + key + ": expected a number");
    return static_cast<float>(v);
  }

  // A Float32Array field (or null when optional) with at least need floats.
  float* floats(napi_value value, const std::string& name, int64_t need, bool optional = false) {
    if (!ok) return nullptr;
    napi_valuetype t;
    napi_typeof(env_, value, &t);
    if (optional && (t == napi_null || t == napi_undefined)) return nullptr;
    std::string error;
    float* data = read_floats(env_, value, name, need, &error);
    if (!data) fail(error);
    return data;
  }

  // count Float32Arrays from the array field key, with the sizes given.
  std::vector<float*> group(napi_value obj, const char* key, const std::string& where, const int64_t* sizes, uint32_t count) {
    std::vector<float*> out(count, nullptr);
    napi_value arr = field(obj, key, where);
    if (ok && length(arr, where + "." + key) != count) fail(where + "." + key + ": expected " + std::to_string(count) + " arrays");
    for (uint32_t i = 0; i < count && ok; i++) out[i] = floats(element(arr, i), where + "." + key + "[" + std::to_string(i) + "]", sizes[i]);
    return out;
  }

  void fail(const std::string& message) {
    if (ok) napi_throw_error(env_, "FLIP_NATIVE", message.c_str());
    ok = false;
  }

 private:
  napi_env env_;
};

// stacks[i] = { h | dy, keyBias, batch, tokens, heads, eps, layers: [{ hidden, attnWeights[10], attnSaved[7], attnOut |
// attnGrads[11], mlpWeights[6], mlpSaved[4], mlpOut | mlpGrads[7] }] }
bool read_stacks(StackReader& r, napi_value arr, bool backward, std::vector<Stack>* stacks) {
  const uint32_t count = r.length(arr, "stacks");
  if (r.ok && (count < 1 || count > static_cast<uint32_t>(kMaxStacks))) {
    r.fail("stacks: expected 1 or 2 stacks, got " + std::to_string(count));
  }
  for (uint32_t i = 0; i < count && r.ok; i++) {
    const std::string where = "stacks[" + std::to_string(i) + "]";
    napi_value o = r.element(arr, i);
    Stack st;
    st.shape.batch = r.integer(o, "batch", where);
    st.shape.tokens = r.integer(o, "tokens", where);
    st.shape.heads = r.integer(o, "heads", where);
    const int64_t d = r.integer(o, "width", where);
    st.eps = r.number(o, "eps", where);
    if (!r.ok) return false;
    if (st.shape.heads == 0 || d % st.shape.heads != 0) {
      r.fail(where + ": heads must divide width");
      return false;
    }
    st.shape.head_dim = d / st.shape.heads;
    st.shape.scale = 1.0f / std::sqrt(static_cast<float>(st.shape.head_dim));
    const int64_t n = st.shape.batch * st.shape.tokens;
    st.h = backward ? nullptr : r.floats(r.field(o, "h", where), where + ".h", n * d);
    st.dy = backward ? r.floats(r.field(o, "dy", where), where + ".dy", n * d) : nullptr;
    st.key_bias = r.floats(r.field(o, "keyBias", where), where + ".keyBias", n, true);
    napi_value layers = r.field(o, "layers", where);
    const uint32_t depth = r.length(layers, where + ".layers");
    for (uint32_t l = 0; l < depth && r.ok; l++) {
      const std::string lw = where + ".layers[" + std::to_string(l) + "]";
      napi_value lo = r.element(layers, l);
      StackLayer L;
      L.hidden = r.integer(lo, "hidden", lw);
      int64_t aw[10], as[7], mw[6], ms[4];
      attention_sizes(st.shape, aw, as);
      mlp_sizes(n, d, L.hidden, mw, ms);
      auto w = r.group(lo, "attnWeights", lw, aw, 10);
      auto sv = r.group(lo, "attnSaved", lw, as, 7);
      auto mwv = r.group(lo, "mlpWeights", lw, mw, 6);
      auto msv = r.group(lo, "mlpSaved", lw, ms, 4);
      if (!r.ok) return false;
      L.attn_w = {w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], w[9]};
      L.attn_saved = {sv[0], sv[1], sv[2], sv[3], sv[4], sv[5], sv[6]};
      L.mlp_w = {mwv[0], mwv[1], mwv[2], mwv[3], mwv[4], mwv[5]};
      L.mlp_saved = {msv[0], msv[1], msv[2], msv[3]};
      if (backward) {
        int64_t ag[11], mg[7];
        ag[0] = n * d;
        for (int k = 0; k < 10; k++) ag[k + 1] = aw[k];
        mg[0] = n * d;
        for (int k = 0; k < 6; k++) mg[k + 1] = mw[k];
        auto g = r.group(lo, "attnGrads", lw, ag, 11);
        auto m = r.group(lo, "mlpGrads", lw, mg, 7);
        if (!r.ok) return false;
        L.attn_grads = {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10]};
        L.mlp_grads = {m[0], m[1], m[2], m[3], m[4], m[5], m[6]};
        L.attn_out = L.mlp_out = nullptr;
      } else {
        L.attn_out = r.floats(r.field(lo, "attnOut", lw), lw + ".attnOut", n * d);
        L.mlp_out = r.floats(r.field(lo, "mlpOut", lw), lw + ".mlpOut", n * d);
      }
      st.layers.push_back(L);
    }
    stacks->push_back(std::move(st));
  }
  return r.ok;
}

// stacksForward(stacks, halves) and stacksBackward(stacks, halves).
napi_value RunStacks(napi_env env, napi_callback_info info, const char* name, bool backward) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  StackReader r(env);
  std::vector<Stack> stacks;
  bool halves = true;
  if (argc != 2 || napi_get_value_bool(env, argv[1], &halves) != napi_ok) {
    r.fail(std::string(name) + ": expected (stacks, halves: boolean)");
    return nullptr;
  }
  if (!read_stacks(r, argv[0], backward, &stacks)) return nullptr;
  if (backward) stacks_backward(stacks, halves);
  else stacks_forward(stacks, halves);
  return nullptr;
}

napi_value StacksForward(napi_env env, napi_callback_info info) { return RunStacks(env, info, "stacksForward", false); }
napi_value StacksBackward(napi_env env, napi_callback_info info) { return RunStacks(env, info, "stacksBackward", true); }

// The CLIP head's shape arguments from position `first`: batch, tokensA, tokensB, meanA, meanB, width, embed.
void head_shape(Args& in, size_t first, HeadShape* s, HeadTower towers[2]) {
  s->batch = in.integer(first, "batch");
  towers[0].tokens = in.integer(first + 1, "tokensA");
  towers[1].tokens = in.integer(first + 2, "tokensB");
  towers[0].mean_pool = in.boolean(first + 3, "meanA");
  towers[1].mean_pool = in.boolean(first + 4, "meanB");
  s->width = in.integer(first + 5, "width");
  s->embed = in.integer(first + 6, "embed");
}

const char* const kHeadWeights[] = {"lnGammaA", "lnBetaA", "projA", "lnGammaB", "lnBetaB", "projB"};

// The towers' rows in the packed h (or dh), their weights (or gradients) from the array at argument `arg`.
void head_towers(Args& in, size_t arg, const HeadShape& s, HeadTower towers[2], const float* packed, bool gradients) {
  int64_t row = 0;
  for (int t = 0; t < 2; t++) {
    HeadTower& tw = towers[t];
    const std::string prefix = gradients ? "grads." : "weights.";
    float* w[3];
    for (uint32_t i = 0; i < 3; i++) {
      w[i] = in.floats_in(arg, t * 3 + i, prefix + kHeadWeights[t * 3 + i], i < 2 ? s.width : s.width * s.embed);
    }
    if (gradients) {
      tw.dh = packed ? const_cast<float*>(packed) + row * s.width : nullptr;
      tw.d_ln_gamma = w[0], tw.d_ln_beta = w[1], tw.d_proj = w[2];
    } else {
      tw.h = packed ? packed + row * s.width : nullptr;
      tw.ln_gamma = w[0], tw.ln_beta = w[1], tw.proj = w[2];
    }
    row += s.batch * tw.tokens;
  }
}

napi_value number_value(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

// clipHeadSavedFloats(batch, tokensA, tokensB, meanA, meanB, width, embed)
napi_value ClipHeadSavedFloats(napi_env env, napi_callback_info info) {
  Args in(env, info, "clipHeadSavedFloats", 7);
  HeadShape s{};
  HeadTower towers[2] = {};
  head_shape(in, 0, &s, towers);
  return in.ok() ? number_value(env, static_cast<double>(clip_head_saved_floats(s, towers))) : nullptr;
}

// clipHeadForward(h, weights[6], logScale, saved, batch, tokensA, tokensB, meanA, meanB, width, embed, eps) -> loss;
// h: both towers' rows packed [batch * (tokensA + tokensB), width].
napi_value ClipHeadForward(napi_env env, napi_callback_info info) {
  Args in(env, info, "clipHeadForward", 12);
  HeadShape s{};
  HeadTower towers[2] = {};
  head_shape(in, 4, &s, towers);
  s.eps = in.number(11, "eps");
  const float log_scale = in.number(2, "logScale");
  const float* h = in.floats(0, "h", s.batch * (towers[0].tokens + towers[1].tokens) * s.width);
  head_towers(in, 1, s, towers, h, false);
  float* saved = in.floats(3, "saved", in.ok() ? clip_head_saved_floats(s, towers) : 0);
  return in.ok() ? number_value(env, clip_head_forward(s, towers, log_scale, saved)) : nullptr;
}

// clipHeadBackward(upstream, weights[6], saved, dh, grads[6], batch, tokensA, tokensB, meanA, meanB, width, embed)
// -> the log scale's gradient.
napi_value ClipHeadBackward(napi_env env, napi_callback_info info) {
  Args in(env, info, "clipHeadBackward", 12);
  HeadShape s{};
  HeadTower towers[2] = {};
  head_shape(in, 5, &s, towers);
  const float upstream = in.number(0, "upstream");
  head_towers(in, 1, s, towers, nullptr, false);
  const float* saved = in.floats(2, "saved", in.ok() ? clip_head_saved_floats(s, towers) : 0);
  float* dh = in.floats(3, "dh", s.batch * (towers[0].tokens + towers[1].tokens) * s.width);
  head_towers(in, 4, s, towers, dh, true);
  return in.ok() ? number_value(env, clip_head_backward(s, towers, upstream, saved)) : nullptr;
}

PatchEmbedding patch_embedding(Args& in, size_t first) {
  PatchEmbedding e{};
  e.batch = in.integer(first, "batch");
  e.tokens = in.integer(first + 1, "tokens");
  e.pixel_values = in.integer(first + 2, "pixelValues");
  e.width = in.integer(first + 3, "width");
  in.check(e.tokens >= 1, "tokens: expected at least 1 (the CLS row)");
  return e;
}

// patchEmbeddingForward(pixels, keep, w, bias, cls, positions, out, batch, tokens, pixelValues, width, patches)
napi_value PatchEmbeddingForward(napi_env env, napi_callback_info info) {
  Args in(env, info, "patchEmbeddingForward", 12);
  PatchEmbedding e = patch_embedding(in, 7);
  const int64_t patches = in.integer(11, "patches");
  const int64_t rows = e.batch * e.tokens;
  const float* pixels = in.floats(0, "pixels", rows * e.pixel_values);
  const int32_t* keep = in.indices(1, "keep", e.batch * (e.tokens - 1), patches);
  e.w = in.floats(2, "w", e.pixel_values * e.width);
  e.bias = in.floats(3, "bias", e.width);
  e.cls = in.floats(4, "cls", e.width);
  e.positions = in.floats(5, "positions", patches * e.width);
  float* out = in.floats(6, "out", rows * e.width);
  if (in.ok()) patch_embedding_forward(e, pixels, keep, out);
  return nullptr;
}

// patchEmbeddingBackward(pixels, dout, dw, dbias, dcls, batch, tokens, pixelValues, width)
napi_value PatchEmbeddingBackward(napi_env env, napi_callback_info info) {
  Args in(env, info, "patchEmbeddingBackward", 9);
  const PatchEmbedding e = patch_embedding(in, 5);
  const int64_t rows = e.batch * e.tokens;
  const float* pixels = in.floats(0, "pixels", rows * e.pixel_values);
  const float* dout = in.floats(1, "dout", rows * e.width);
  float* dw = in.floats(2, "dw", e.pixel_values * e.width);
  float* dbias = in.floats(3, "dbias", e.width);
  float* dcls = in.floats(4, "dcls", e.width);
  if (in.ok()) patch_embedding_backward(e, pixels, dout, dw, dbias, dcls);
  return nullptr;
}

TokenEmbedding token_embedding(Args& in, size_t first) {
  TokenEmbedding e{};
  e.rows = in.integer(first, "rows");
  e.vocab = in.integer(first + 1, "vocab");
  e.context = in.integer(first + 2, "context");
  e.width = in.integer(first + 3, "width");
  return e;
}

// tokenEmbeddingForward(ids, positions, table, positionTable, out, rows, vocab, context, width)
napi_value TokenEmbeddingForward(napi_env env, napi_callback_info info) {
  Args in(env, info, "tokenEmbeddingForward", 9);
  TokenEmbedding e = token_embedding(in, 5);
  const int32_t* ids = in.indices(0, "ids", e.rows, e.vocab);
  const int32_t* positions = in.indices(1, "positions", e.rows, e.context);
  e.table = in.floats(2, "table", e.vocab * e.width);
  e.positions = in.floats(3, "positionTable", e.context * e.width);
  float* out = in.floats(4, "out", e.rows * e.width);
  if (in.ok()) token_embedding_forward(e, ids, positions, out);
  return nullptr;
}

// tokenEmbeddingBackward(ids, positions, dout, dtable, dpositions, rows, vocab, context, width)
napi_value TokenEmbeddingBackward(napi_env env, napi_callback_info info) {
  Args in(env, info, "tokenEmbeddingBackward", 9);
  const TokenEmbedding e = token_embedding(in, 5);
  const int32_t* ids = in.indices(0, "ids", e.rows, e.vocab);
  const int32_t* positions = in.indices(1, "positions", e.rows, e.context);
  const float* dout = in.floats(2, "dout", e.rows * e.width);
  float* dtable = in.floats(3, "dtable", e.vocab * e.width);
  float* dpositions = in.floats(4, "dpositions", e.context * e.width);
  if (in.ok()) token_embedding_backward(e, ids, positions, dout, dtable, dpositions);
  return nullptr;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value obj, config, core, threads;
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, blas_config(), NAPI_AUTO_LENGTH, &config);
  napi_create_string_utf8(env, blas_core(), NAPI_AUTO_LENGTH, &core);
  napi_create_int32(env, ::threads(), &threads);
  napi_set_named_property(env, obj, "config", config);
  napi_set_named_property(env, obj, "core", core);
  napi_set_named_property(env, obj, "threads", threads);
  return obj;
}

// scratchBytes(): bytes held by the sublayers' scratch buffers.
napi_value ScratchBytes(napi_env env, napi_callback_info) {
  napi_value out;
  napi_create_double(env, static_cast<double>(sublayer_scratch_bytes()), &out);
  return out;
}

// releaseScratch(): frees the scratch buffers (they grow again on the next call that needs them).
napi_value ReleaseScratch(napi_env, napi_callback_info) {
  sublayer_scratch_release();
  return nullptr;
}

// setThreads(n): threads the kernels use in this process, the calling one included.
napi_value SetThreads(napi_env env, napi_callback_info info) {
  Args in(env, info, "setThreads", 1);
  const int64_t n = in.integer(0, "n");
  if (in.ok()) set_threads(static_cast<int>(n < 1 ? 1 : n > 64 ? 64 : n));
  return nullptr;
}

// Every entry point runs with subnormals flushed to zero, restored when it returns (flush_denormals.h says why).
template <napi_value (*F)(napi_env, napi_callback_info)>
napi_value Flushed(napi_env env, napi_callback_info info) {
  FlushDenormals flush;
  return F(env, info);
}

napi_value Init(napi_env env, napi_value exports) {
  set_threads(1);  // until the caller asks for more
  napi_property_descriptor props[] = {
      {"gemm", nullptr, Flushed<Gemm>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"linearForward", nullptr, Flushed<LinearForward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"columnSums", nullptr, Flushed<ColumnSums>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"layerNormForward", nullptr, Flushed<LayerNormForward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"layerNormBackward", nullptr, Flushed<LayerNormBackward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamwStep", nullptr, Flushed<AdamwStep>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"attentionSublayerForward", nullptr, Flushed<AttentionSublayerForward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"attentionSublayerBackward", nullptr, Flushed<AttentionSublayerBackward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"mlpSublayerForward", nullptr, Flushed<MlpSublayerForward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"mlpSublayerBackward", nullptr, Flushed<MlpSublayerBackward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"scratchBytes", nullptr, Flushed<ScratchBytes>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"releaseScratch", nullptr, Flushed<ReleaseScratch>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"stacksForward", nullptr, Flushed<StacksForward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"stacksBackward", nullptr, Flushed<StacksBackward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"clipHeadSavedFloats", nullptr, Flushed<ClipHeadSavedFloats>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"clipHeadForward", nullptr, Flushed<ClipHeadForward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"clipHeadBackward", nullptr, Flushed<ClipHeadBackward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"patchEmbeddingForward", nullptr, Flushed<PatchEmbeddingForward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"patchEmbeddingBackward", nullptr, Flushed<PatchEmbeddingBackward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"tokenEmbeddingForward", nullptr, Flushed<TokenEmbeddingForward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"tokenEmbeddingBackward", nullptr, Flushed<TokenEmbeddingBackward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Flushed<Info>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, Flushed<SetThreads>, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
