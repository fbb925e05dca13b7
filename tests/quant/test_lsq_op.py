"""The fused fake-quantizers against plain autograd references with the straight-through
estimator written out: same forward values bit for bit, same gradients (LSQ, Esser et al. 2020).

The fused ops save fewer tensors and work in place; these tests pin that nothing else changed:
ties round half up (half to even for the network input), the clamp, the in-range mask, the
gradient of the scale (round(x/s) - x/s in range, qmin or qmax outside, times g).
"""

import pytest
import torch

from filmqnn.quant.act_quant import _LsqQuantize, _open_range, round_half_up
from filmqnn.quant.weight_quant import fake_quantize_scaled


def _lsq_reference(x, s, qmin, qmax, g, half_even):
    """y = clamp(round(x/s), qmin, qmax) * s in plain ops; autograd gives the LSQ gradients."""
    s = s.detach() + (s - s.detach()) * g  # value s exactly, gradient scaled by g
    xs = x / s
    with torch.no_grad():
        r = torch.round(xs) if half_even else torch.floor(xs + 0.5)
        q = r.clamp(qmin, qmax)
        inside = (r == q).to(x.dtype)
    q_ste = q + (xs - xs.detach()) * inside  # value q; d/d(x/s) = 1 in range, 0 outside
    return q_ste * s


def _inputs(shape, scale, qmin, qmax, seed):
    """Random levels over twice the range times `scale`, with exact ties k + 1/2, the boundary
    ties qmin - 1/2 and qmax + 1/2 and their neighbours one ulp either side, and far
    out-of-range values mixed in."""
    gen = torch.Generator().manual_seed(seed)
    span = qmax - qmin
    levels = torch.rand(shape, generator=gen) * 2 * span + qmin - span / 2
    k = torch.randint(qmin - 2, qmax + 2, shape, generator=gen).float()
    ties = torch.rand(shape, generator=gen) < 0.3
    levels = torch.where(ties, k + 0.5, levels)
    edges = torch.tensor([qmin - 0.5, qmax + 0.5])
    near = [edges, torch.nextafter(edges, edges - 1), torch.nextafter(edges, edges + 1)]
    special = torch.cat(near + [torch.tensor([qmin - 40.0, qmax + 40.0])])
    levels.view(-1)[: len(special)] = special
    return levels * scale


@pytest.mark.parametrize("half_even", [False, True])
@pytest.mark.parametrize(("qmin", "qmax"), [(0, 31), (-16, 15), (-128, 127), (-15, 14)])
@pytest.mark.parametrize("scale", [0.25, 0.0375])
@pytest.mark.parametrize("seed", range(3))
def test_lsq_op_matches_the_reference(half_even, qmin, qmax, scale, seed):
    shape = (6, 5, 7, 9)
    x0 = _inputs(shape, scale, qmin, qmax, seed)
    g = 1.0 / (x0[0].numel() * qmax) ** 0.5
    grad = torch.randn(shape, generator=torch.Generator().manual_seed(100 + seed))
    results = []
    for op in (_LsqQuantize.apply, _lsq_reference):
        x = x0.clone().requires_grad_()
        s = torch.tensor(scale, requires_grad=True)
        y = op(x, s.abs(), qmin, qmax, g, half_even)
        y.backward(grad)
        results.append((y.detach(), x.grad, s.grad))
    (y, gx, gs), (y_ref, gx_ref, gs_ref) = results
    assert torch.equal(y, y_ref)
    levels = x0 / scale
    if scale == 0.25:  # x / s exact: the ties are ties
        r = levels.round() if half_even else torch.floor(levels + 0.5)
        assert torch.equal(y / scale, r.clamp(qmin, qmax))
        tie = levels - levels.floor() == 0.5
        assert tie.sum() > 50
    assert torch.equal(gx != 0, gx_ref != 0)  # the same in-range mask
    torch.testing.assert_close(gx, gx_ref, rtol=1e-6, atol=0)
    # grad_s sums terms of both signs: compare within float32 rounding of their magnitudes
    magnitude = float((grad.abs() * (y.abs() / scale + levels.abs())).sum()) * g
    assert abs(float(gs) - float(gs_ref)) <= 1e-5 * magnitude
    assert float(gs_ref) != 0.0


@pytest.mark.parametrize("half_even", [False, True])
@pytest.mark.parametrize(("qmin", "qmax"), [(0, 31), (-16, 15), (-15, 14), (1, 6)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_open_range_is_the_in_range_test(half_even, qmin, qmax, dtype):
    """Every value within 40 ulps of both edges (and the float32 trap 0.49999997, which
    floor(v + 1/2) rounds to 1): lo < v < hi exactly where round(v) is in [qmin, qmax]."""
    lo, hi = _open_range(qmin, qmax, half_even, dtype)
    values = [torch.tensor([0.49999997, 0.5, -0.5], dtype=dtype)]
    for edge in (qmin - 0.5, qmax + 0.5):
        for direction in (-1.0, 1.0):
            v = torch.tensor(edge, dtype=dtype)
            for _ in range(40):
                values.append(v.reshape(1))
                v = torch.nextafter(v, torch.tensor(edge + direction, dtype=dtype))
    v = torch.cat(values)
    r = torch.round(v) if half_even else round_half_up(v)
    assert torch.equal((lo < v) & (v < hi), (r >= qmin) & (r <= qmax))


def test_lsq_op_gradients_by_hand():
    """Four values at s = 1, levels 0..3: in range, a half-up tie, above and below the range."""
    x = torch.tensor([1.25, 1.5, 7.0, -2.0], requires_grad=True)
    s = torch.tensor(1.0, requires_grad=True)
    y = _LsqQuantize.apply(x, s, 0, 3, 0.5, False)
    assert y.tolist() == [1.0, 2.0, 3.0, 0.0]
    y.backward(torch.tensor([1.0, 2.0, 4.0, 8.0]))
    assert x.grad.tolist() == [1.0, 2.0, 0.0, 0.0]
    # g * sum(grad * (round(x/s) - x/s) in range, qmax / qmin outside)
    assert float(s.grad) == pytest.approx(0.5 * (1 * -0.25 + 2 * 0.5 + 4 * 3 + 8 * 0))


def test_lsq_op_leaves_its_input_alone_and_takes_channels_last():
    x = _inputs((4, 6, 5, 5), 0.25, -16, 15, 0)
    x_cl = x.clone().contiguous(memory_format=torch.channels_last).requires_grad_()
    x_c = x.clone().requires_grad_()
    grad = torch.randn(x.shape)
    out = []
    for t in (x_c, x_cl):
        s = torch.tensor(0.25, requires_grad=True)
        y = _LsqQuantize.apply(t, s, -16, 15, 0.01, False)
        y.backward(grad)
        out.append((y.detach(), t.grad, s.grad))
    assert torch.equal(x_c.detach(), x) and torch.equal(x_cl.detach(), x)
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1])
    torch.testing.assert_close(out[0][2], out[1][2])


@pytest.mark.parametrize("seed", range(3))
def test_weight_op_matches_the_reference(seed):
    gen = torch.Generator().manual_seed(seed)
    w0 = torch.randn(8, 4, 3, 3, generator=gen)
    scale = torch.rand(8, generator=gen) * 0.2 + 0.05
    qmax = torch.tensor([7.0, 127.0] * 4)
    w0[:, 0, 0, 0] = (torch.arange(8) - 3.5) * scale  # ties and (with qmax 7) clipped values
    w0[:, 0, 0, 1] = 9 * scale
    grad = torch.randn(w0.shape, generator=gen)
    w = w0.clone().requires_grad_()
    y = fake_quantize_scaled(w, scale, qmax)
    y.backward(grad)
    s, top = scale.reshape(-1, 1, 1, 1), qmax.reshape(-1, 1, 1, 1)
    w_ref = w0.clone().requires_grad_()
    with torch.no_grad():
        r = torch.round(w_ref / s)
        q = r.clamp(-top, top)
        inside = (q == r).to(w0.dtype)
    y_ref = q * s + (w_ref - w_ref.detach()) * inside
    y_ref.backward(grad)
    assert torch.equal(y.detach(), y_ref.detach())
    assert torch.equal(w.grad, w_ref.grad)
    assert bool((w.grad == 0).any()) and bool((w.grad != 0).any())
