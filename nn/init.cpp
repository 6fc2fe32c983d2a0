// nn/init.cpp: in-place initialisers (values drawn on the CPU, then copied to t's device).
#include "nn/init.h"

#include "autograd/tape.h"
#include "ops/ops.h"

namespace aft::nn::init {

void normal_(const Tensor& t, double mean, double std, Generator* gen) {
  autograd::NoGradGuard ng;
  Tensor v = add(mul(randn(t.shape(), kFloat64, gen), std), mean);
  Tensor(t).copy_(v);
}

void uniform_(const Tensor& t, double low, double high, Generator* gen) {
  autograd::NoGradGuard ng;
  Tensor v = add(mul(rand(t.shape(), kFloat64, gen), high - low), low);
  Tensor(t).copy_(v);
}

void constant_(const Tensor& t, double value) {
  autograd::NoGradGuard ng;
  Tensor(t).fill_(value);
}

void zeros_(const Tensor& t) { constant_(t, 0.0); }
void ones_(const Tensor& t) { constant_(t, 1.0); }

}  // namespace aft::nn::init
