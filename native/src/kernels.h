// The add-on's kernels on raw float arrays, row-major. Shapes are checked by the caller (addon.cc). Each splits its
// work over the thread pool (parallel.h) when there is enough of it.
#pragma once
#include <cstdint>
#include <vector>

// out [n, dout] = residual [n, dout] + x [n, din] w [din, dout] + bias [dout] (residual and bias may be null).
void linear_forward(const float* x, const float* w, const float* bias, const float* residual, float* out, int64_t n, int64_t din,
                    int64_t dout);

// c [m, n] = alpha op(a) op(b) + beta c, row-major with leading dimensions, in one BLAS call on the calling thread.
void matmul_whole(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
                  int64_t ldb, float beta, float* c, int64_t ldc);

// The same split by rows of c over the thread pool.
void matmul(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
            int64_t ldb, float beta, float* c, int64_t ldc);

// sums [d] = sum over the n rows of x [n, d].
void column_sums(const float* x, float* sums, int64_t n, int64_t d);

// LayerNorm over the last axis: y = xhat gamma + beta with xhat = (x - mean) rstd; saves xhat [n, d] and rstd [n].
void layer_norm_forward(const float* x, const float* gamma, const float* beta, float eps, float* y, float* xhat, float* rstd,
                        int64_t n, int64_t d);
// dx [n, d] (plus add [n, d] when not null: a residual branch's gradient); dgamma and dbeta [d] are overwritten.
void layer_norm_backward(const float* dy, const float* xhat, const float* rstd, const float* gamma, const float* add, float* dx,
                         float* dgamma, float* dbeta, int64_t n, int64_t d);
// y = xhat gamma + beta again, from the saved xhat (cheaper to recompute than to keep).
void layer_norm_reapply(const float* xhat, const float* gamma, const float* beta, float* y, int64_t n, int64_t d);

// QuickGELU x sigmoid(1.702 x) over count elements, and its gradient dx = dy (s + 1.702 x s (1 - s)).
void quick_gelu_forward(const float* x, float* y, int64_t count);
void quick_gelu_backward(const float* dy, const float* x, float* dx, int64_t count);

// Multi-head attention core on token-major tensors q, k, v, out [batch * tokens, heads * head_dim]: per sample and head,
// probs = softmax(scale q k^T + key_bias) and out = probs v. key_bias [batch * tokens] (may be null) is added to every
// query's scores for that key. probs [batch, heads, tokens, tokens] is saved for the backward pass.
struct AttentionShape {
  int64_t batch, tokens, heads, head_dim;
  float scale;
};
void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v, const float* key_bias, float* out,
                       float* probs);
// dq, dk, dv [batch * tokens, heads * head_dim].
void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v, const float* probs,
                        const float* dout, float* dq, float* dk, float* dv);

// AdamW on count parameters: m, v updated in place; out = p - lr (m c1 / (sqrt(v c2) + eps) + wd p).
struct AdamWStep {
  float lr, beta1, beta2, eps, weight_decay, c1, c2, v_floor;
};
// One parameter tensor of an AdamW step: out may be p itself (the update written in place).
struct AdamWTensor {
  const float *p, *g;
  float *m, *v, *out;
  int64_t count;
  float weight_decay;
};
// Every tensor's update in one call, split over the pool by elements (step.weight_decay is unused: each tensor has its own).
void adamw_step(const AdamWStep& step, const std::vector<AdamWTensor>& tensors);

// Fused pre-LN transformer sublayers on token-major h [n, d] (n = batch * tokens), forward and backward in one call
// each. The forward returns what the backward needs (the Saved structs); weights are row-major [in, out].
struct AttentionWeights {
  const float *ln_gamma, *ln_beta, *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo;
};
struct AttentionSaved {
  float *xhat, *rstd, *q, *k, *v, *probs, *ctx;  // [n,d], [n], [n,d] x3, [batch,heads,tokens,tokens], [n,d]
};
struct AttentionGrads {
  float *dh, *ln_gamma, *ln_beta, *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo;
};
// Sizes in floats of the weights (in AttentionWeights / MlpWeights order; their gradients have the same sizes) and of
// the saved tensors (AttentionSaved / MlpSaved order).
void attention_sizes(const AttentionShape& s, int64_t weights[10], int64_t saved[7]);
void mlp_sizes(int64_t n, int64_t d, int64_t m, int64_t weights[6], int64_t saved[4]);

// out = h + attention(LN(h)) wo + bo.
void attention_sublayer_forward(const AttentionShape& s, float eps, const float* h, const AttentionWeights& w, const float* key_bias,
                                float* out, const AttentionSaved& saved);
void attention_sublayer_backward(const AttentionShape& s, const float* dy, const AttentionWeights& w, const AttentionSaved& saved,
                                 const AttentionGrads& g);

struct MlpWeights {
  const float *ln_gamma, *ln_beta, *w1, *b1, *w2, *b2;
};
struct MlpSaved {
  float *xhat, *rstd, *u, *z;  // [n,d], [n], pre-activation [n,m], QuickGELU(u) [n,m]
};
struct MlpGrads {
  float *dh, *ln_gamma, *ln_beta, *w1, *b1, *w2, *b2;
};
// Bytes of the sublayers' scratch buffers (intermediate gradients): real memory that tfjs does not see.
int64_t sublayer_scratch_bytes();
void sublayer_scratch_release();
// Transformer stacks that may run side by side, and the scratch arena (< kMaxStacks) the calling thread uses.
constexpr int kMaxStacks = 2;
void use_scratch_arena(int index);
// A buffer of n floats from an arena's slot (slots from kFirstGradientSlot up are free for callers other than the
// sublayers), valid until that slot is asked for again.
constexpr int kFirstGradientSlot = 16;
float* scratch_buffer(int arena_index, int slot, int64_t n);

// out = h + QuickGELU(LN(h) w1 + b1) w2 + b2, hidden width m.
void mlp_sublayer_forward(int64_t n, int64_t d, int64_t m, float eps, const float* h, const MlpWeights& w, float* out, const MlpSaved& saved);
void mlp_sublayer_backward(int64_t n, int64_t d, int64_t m, const float* dy, const MlpWeights& w, const MlpSaved& saved, const MlpGrads& g);

// Transformer stacks (pre-LN blocks: attention sublayer then MLP sublayer) on h [batch * tokens, d]. The forward
// writes each sublayer's output and saved tensors; the backward, from dy (the gradient of the last output), writes
// each sublayer's gradients (dh first: the gradient of that sublayer's input). The work is split between two threads
// (stacks.cc says how) in a way that does not depend on the thread count.
struct StackLayer {
  int64_t hidden;
  AttentionWeights attn_w;
  AttentionSaved attn_saved;
  float* attn_out;
  AttentionGrads attn_grads;
  MlpWeights mlp_w;
  MlpSaved mlp_saved;
  float* mlp_out;
  MlpGrads mlp_grads;
};
struct Stack {
  AttentionShape shape;
  float eps;
  const float* h;         // forward input
  const float* key_bias;  // may be null
  const float* dy;        // backward input
  std::vector<StackLayer> layers;
};
// halves: every stack cut into two halves of its samples, one per thread (equal work at any size); else each stack
// whole on its own thread (two stacks of about the same size).
void stacks_forward(const std::vector<Stack>& stacks, bool halves);
void stacks_backward(const std::vector<Stack>& stacks, bool halves);

// The CLIP head (clip_head.cc): per tower, the final LayerNorm, pooling (the mean over each sample's tokens, or its
// first token), the projection and L2 normalisation; then logits exp(log_scale) u v^T over the batch and the mean of
// the image->text and text->image cross-entropies. Tower 0 is the images (rows of the logits), tower 1 the captions.
struct HeadTower {
  const float* h;  // forward input [batch * tokens, width]
  float* dh;       // backward output, same shape
  int64_t tokens;
  bool mean_pool;
  const float *ln_gamma, *ln_beta, *proj;  // [width], [width], [width, embed]
  float *d_ln_gamma, *d_ln_beta, *d_proj;  // backward outputs
};
struct HeadShape {
  int64_t batch, width, embed;
  float eps;
};
// Floats of the buffer the forward pass fills for the backward pass.
int64_t clip_head_saved_floats(const HeadShape& s, const HeadTower towers[2]);
// Returns the loss.
float clip_head_forward(const HeadShape& s, const HeadTower towers[2], float log_scale, float* saved);
// From the loss's upstream gradient: writes each tower's dh and weight gradients, returns the log scale's gradient.
float clip_head_backward(const HeadShape& s, const HeadTower towers[2], float upstream, const float* saved);

// The image tower's input (embeddings.cc): out [batch * tokens, width], each sample's CLS row first (cls + bias), then
// its kept patches: pixels w + bias + positions[keep]. pixels [batch * tokens, pixel_values] is zero on CLS rows; keep
// [batch * (tokens - 1)] indexes the fixed position table [patches, width].
struct PatchEmbedding {
  int64_t batch, tokens, pixel_values, width;
  const float *w, *bias, *cls, *positions;  // [pixel_values, width], [width], [width], [patches, width]
};
void patch_embedding_forward(const PatchEmbedding& e, const float* pixels, const int32_t* keep, float* out);
// dw [pixel_values, width], dbias and dcls [width].
void patch_embedding_backward(const PatchEmbedding& e, const float* pixels, const float* dout, float* dw, float* dbias, float* dcls);

// The text tower's input: out [rows, width] = table[ids] + positions[position of each token].
struct TokenEmbedding {
  int64_t rows, vocab, context, width;
  const float *table, *positions;  // [vocab, width], [context, width]
};
void token_embedding_forward(const TokenEmbedding& e, const int32_t* ids, const int32_t* positions, float* out);
// dtable [vocab, width] and dpositions [context, width], overwritten.
void token_embedding_backward(const TokenEmbedding& e, const int32_t* ids, const int32_t* positions, const float* dout, float* dtable,
                              float* dpositions);
