// ops/views.cpp: view ops. Each makes a new TensorImpl over the same storage (no copy) and,
// when the input requires grad, records a node whose backward maps the gradient back:
// the inverse reshape or permutation, a sum over broadcast dims for expand, and a scatter into
// zeros for narrow/slice/select.
#include <numeric>

#include "autograd/tape.h"
#include "ops/op_utils.h"
#include "ops/ops.h"

namespace aft {

namespace {

// Records a view node whose backward is `back(grad)`.
template <class Back>
Tensor recorded_view(const char* name, const Tensor& in, Tensor out, Back back) {
  if (autograd::needs_grad(in))
    autograd::record(name, {in}, {out}, [back](const autograd::TensorList& g) {
      return autograd::TensorList{back(g[0])};
    });
  return out;
}

// Resolves one -1 extent and checks the element count.
Shape infer_shape(const Shape& requested, int64_t numel, const char* op, const Shape& from) {
  Shape s = requested;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < s.ndim(); ++i) {
    if (s[i] == -1) {
      AFT_CHECK(infer < 0, "{}: only one extent can be -1, got {}", op, requested);
      infer = i;
    } else {
      AFT_CHECK(s[i] >= 0, "{}: invalid extent in {}", op, requested);
      known *= s[i];
    }
  }
  if (infer >= 0) {
    AFT_CHECK(known != 0 && numel % known == 0, "{}: cannot view {} as {}", op, from, requested);
    s[infer] = numel / known;
  }
  AFT_CHECK(s.numel() == numel, "{}: cannot view {} ({} elements) as {} ({} elements)", op, from,
            numel, requested, s.numel());
  return s;
}

// Strides for viewing (shape, strides) as ns without a copy, if possible. Old dims are cut into
// chunks that are contiguous within themselves (stride[d-1] == stride[d] * shape[d]); each
// chunk must map onto a run of new dims with the same element count, which then get strides
// that walk the chunk in row-major order.
bool view_strides(const Shape& shape, const Strides& strides, const Shape& ns, Strides* out) {
  *out = Shape::filled(ns.ndim(), 1);
  if (shape.numel() == 0 || shape.ndim() == 0) {
    *out = contiguous_strides(ns);
    return true;
  }
  int vd = ns.ndim() - 1;
  int64_t chunk_stride = strides[shape.ndim() - 1];
  int64_t chunk_numel = 1, view_numel = 1;
  for (int d = shape.ndim() - 1; d >= 0; --d) {
    chunk_numel *= shape[d];
    bool chunk_ends = d == 0 || (shape[d - 1] != 1 && strides[d - 1] != chunk_numel * chunk_stride);
    if (!chunk_ends) continue;
    while (vd >= 0 && (view_numel < chunk_numel || ns[vd] == 1)) {
      (*out)[vd] = view_numel * chunk_stride;
      view_numel *= ns[vd];
      --vd;
    }
    if (view_numel != chunk_numel) return false;
    if (d > 0) {
      chunk_stride = strides[d - 1];
      chunk_numel = 1;
      view_numel = 1;
    }
  }
  return vd == -1;
}

}  // namespace

Tensor Tensor::view(const Shape& shape) const {
  Shape ns = infer_shape(shape, numel(), "view", this->shape());
  Strides st;
  AFT_CHECK(view_strides(this->shape(), strides(), ns, &st),
            "view: a tensor of shape {} with strides {} cannot be viewed as {} without a copy; "
            "use reshape()", this->shape(), strides(), ns);
  Shape old = this->shape();
  return recorded_view("view", *this, as_strided(*this, ns, st, offset()),
                       [old](const Tensor& g) { return g.reshape(old); });
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape ns = infer_shape(shape, numel(), "reshape", this->shape());
  Strides st;
  if (view_strides(this->shape(), strides(), ns, &st)) return view(ns);
  return contiguous().view(ns);
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (ndim() == 0) return reshape({1});
  int s = wrap_dim(start_dim, ndim(), "flatten"), e = wrap_dim(end_dim, ndim(), "flatten");
  AFT_CHECK(s <= e, "flatten: start_dim {} after end_dim {}", start_dim, end_dim);
  Shape ns;
  for (int d = 0; d < s; ++d) ns.push_back(shape()[d]);
  int64_t m = 1;
  for (int d = s; d <= e; ++d) m *= shape()[d];
  ns.push_back(m);
  for (int d = e + 1; d < ndim(); ++d) ns.push_back(shape()[d]);
  return reshape(ns);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  const int n = ndim();
  AFT_CHECK(static_cast<int>(dims.size()) == n, "permute: {} dims given for a tensor of shape {}",
            dims.size(), shape());
  std::vector<int64_t> perm(n);
  std::vector<bool> seen(n, false);
  Shape ns = Shape::filled(n, 0), st = Shape::filled(n, 0);
  for (int i = 0; i < n; ++i) {
    int d = wrap_dim(dims[i], n, "permute");
    AFT_CHECK(!seen[d], "permute: dim {} repeated", d);
    seen[d] = true;
    perm[i] = d;
    ns[i] = shape()[d];
    st[i] = strides()[d];
  }
  std::vector<int64_t> inv(n);
  for (int i = 0; i < n; ++i) inv[perm[i]] = i;
  return recorded_view("permute", *this, as_strided(*this, ns, st, offset()),
                       [inv](const Tensor& g) { return g.permute(inv); });
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  int n = ndim();
  if (n == 0) return permute({});
  std::vector<int64_t> p(n);
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[wrap_dim(dim0, n, "transpose")], p[wrap_dim(dim1, n, "transpose")]);
  return permute(p);
}

Tensor Tensor::t() const {
  AFT_CHECK(ndim() == 2, "t: expected a 2-d tensor, got shape {}", shape());
  return transpose(0, 1);
}

Tensor Tensor::slice(int64_t dim, int64_t start, int64_t end, int64_t step) const {
  AFT_CHECK(ndim() > 0, "slice: cannot slice a 0-d tensor");
  int d = wrap_dim(dim, ndim(), "slice");
  AFT_CHECK(step >= 1, "slice: step must be positive, got {}", step);
  int64_t n = shape()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  int64_t len = (end - start + step - 1) / step;
  Shape ns = shape();
  Strides st = strides();
  ns[d] = len;
  st[d] *= step;
  int64_t off = offset() + start * strides()[d];
  Shape in_shape = shape();
  return recorded_view("slice", *this, as_strided(*this, ns, st, off),
                       [in_shape, d, start, end, step](const Tensor& g) {
                         Tensor z = zeros(in_shape, {g.dtype(), g.device()});
                         z.slice(d, start, end, step).copy_(g);
                         return z;
                       });
}

Tensor Tensor::narrow(int64_t dim, int64_t start, int64_t length) const {
  AFT_CHECK(ndim() > 0, "narrow: cannot narrow a 0-d tensor");
  int d = wrap_dim(dim, ndim(), "narrow");
  int64_t n = shape()[d];
  if (start < 0) start += n;
  AFT_CHECK(start >= 0 && length >= 0 && start + length <= n,
            "narrow: [{}, {}) is out of range for dim {} of shape {}", start, start + length, d,
            shape());
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t dim, int64_t index) const {
  AFT_CHECK(ndim() > 0, "select: cannot select from a 0-d tensor");
  int d = wrap_dim(dim, ndim(), "select");
  int64_t n = shape()[d];
  AFT_CHECK(index >= -n && index < n, "select: index {} out of range for dim {} of shape {}", index,
            d, shape());
  if (index < 0) index += n;
  return narrow(d, index, 1).squeeze(d);
}

Tensor Tensor::unsqueeze(int64_t dim) const {
  int d = wrap_dim(dim, ndim() + 1, "unsqueeze");
  Shape ns = shape();
  Strides st = strides();
  int64_t s = d < ndim() ? strides()[d] * shape()[d] : 1;
  ns.insert(d, 1);
  st.insert(d, s);
  return recorded_view("unsqueeze", *this, as_strided(*this, ns, st, offset()),
                       [d](const Tensor& g) { return g.squeeze(d); });
}

Tensor Tensor::squeeze(int64_t dim) const {
  if (ndim() == 0) return view(Shape{});
  int d = wrap_dim(dim, ndim(), "squeeze");
  if (shape()[d] != 1) return view(shape());
  Shape ns = shape();
  Strides st = strides();
  ns.erase(d);
  st.erase(d);
  return recorded_view("squeeze", *this, as_strided(*this, ns, st, offset()),
                       [d](const Tensor& g) { return g.unsqueeze(d); });
}

Tensor Tensor::squeeze() const {
  Shape ns;
  for (int64_t e : shape())
    if (e != 1) ns.push_back(e);
  return view(ns);
}

Tensor Tensor::expand(const Shape& shape) const {
  const Shape& cur = this->shape();
  int n = shape.ndim();
  AFT_CHECK(n >= cur.ndim(), "expand: cannot expand shape {} to fewer dims {}", cur, shape);
  Shape ns = Shape::filled(n, 0), st = Shape::filled(n, 0);
  for (int i = 0; i < n; ++i) {
    int j = i - (n - cur.ndim());
    int64_t want = shape[i];
    if (j < 0) {
      AFT_CHECK(want >= 0, "expand: extent {} not allowed for a new dim in {}", want, shape);
      ns[i] = want;
      st[i] = 0;
    } else if (want == -1 || want == cur[j]) {
      ns[i] = cur[j];
      st[i] = strides()[j];
    } else {
      AFT_CHECK(want >= 0, "expand: invalid extent {} in {}", want, shape);
      AFT_CHECK(cur[j] == 1, "expand: cannot expand shape {} to {}", cur, shape);
      ns[i] = want;
      st[i] = 0;
    }
  }
  Shape in_shape = cur;
  return recorded_view("expand", *this, as_strided(*this, ns, st, offset()),
                       [in_shape](const Tensor& g) { return sum_to(g, in_shape); });
}

Strides broadcast_strides(const Tensor& t, const Shape& to) {
  const Shape& sh = t.shape();
  int n = to.ndim(), off = n - sh.ndim();
  AFT_ASSERT(off >= 0);
  Strides st = Shape::filled(n, 0);
  for (int i = 0; i < sh.ndim(); ++i) {
    AFT_ASSERT(sh[i] == to[i + off] || sh[i] == 1);
    st[i + off] = sh[i] == 1 ? 0 : t.strides()[i];
  }
  return st;
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  const Shape& gs = grad.shape();
  int lead = gs.ndim() - shape.ndim();
  AFT_ASSERT(lead >= 0);
  std::vector<int64_t> dims;
  for (int i = 0; i < gs.ndim(); ++i)
    if (i < lead || (shape[i - lead] == 1 && gs[i] != 1)) dims.push_back(i);
  Tensor r = dims.empty() ? grad : sum(grad, dims, true);
  return r.reshape(shape);
}

}  // namespace aft
