// examples/consumer/main.cpp: proves an installed aft works from another CMake project:
// one op, one backward, checked against the known derivative.
#include <aft.h>

#include <cmath>
#include <cstdio>

int main() {
  aft::Tensor x = aft::from_vector<double>({0.5, -1.0, 2.0}).requires_grad_();
  aft::Tensor y = aft::sum(aft::exp(x));
  y.backward();
  double err = 0;
  std::vector<double> g = x.grad().to_vector<double>(), v = x.detach().to_vector<double>();
  for (size_t i = 0; i < g.size(); ++i) err = std::fmax(err, std::fabs(g[i] - std::exp(v[i])));
  fmt::print("aft consumer: y = {:.6f}, max gradient error {:.3g}, cuda build: {}\n", y.item(), err,
             aft::cuda::build_mode());
  return err < 1e-12 ? 0 : 1;
}
