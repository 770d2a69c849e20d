"""Tests for nucleikit.models: shared blocks, UNet, KiNet, StainTransferNet and its colour helpers."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from skimage import color

import nucleikit as nk
from nucleikit import losses
from nucleikit.models import KiNet, StainTransferNet, UNet, blocks
from nucleikit.models import stain_transfer as st

SIZES = [(16, 16), (37, 50), (1, 1), (5, 130), (64, 33)]
TINY_UNET = (4, 8, 8, 8, 8)


def _step_lowers(model, loss_fn, params=None, lr=1e-2):
    """Loss before, one Adam step, loss after, evaluated on the same batch in train mode."""
    opt = torch.optim.Adam(params or model.parameters(), lr=lr)
    model.train()
    torch.manual_seed(123)  # same dropout masks in both evaluations
    before = loss_fn()
    opt.zero_grad()
    before.backward()
    opt.step()
    torch.manual_seed(123)
    with torch.no_grad():
        after = loss_fn()
    return float(before.detach()), float(after)


def _calibrate_bn(model, make_batch, n=4):
    """Accumulate batch-norm running statistics so that eval() activations are not degenerate."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average
            m.reset_running_stats()
    model.train()
    with torch.no_grad():
        for _ in range(n):
            model(make_batch())
    model.eval()


# -------------------------------------------------------------------------------------------- blocks
def test_pad_to_multiple_and_crop_round_trip():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    padded, size = blocks.pad_to_multiple(x, 4)
    assert padded.shape == (2, 3, 8, 8)
    assert size == (5, 7)
    torch.testing.assert_close(blocks.crop_to(padded, size), x)
    same, _ = blocks.pad_to_multiple(x, 1)
    assert same is x
    # reflection needs pad < size: a 1x1 input falls back to replicate instead of failing
    tiny, _ = blocks.pad_to_multiple(torch.ones(1, 1, 1, 1), 16)
    assert tiny.shape == (1, 1, 16, 16)
    assert torch.all(tiny == 1)


def test_fit_to_pads_zeros_and_crops_bottom_right():
    x = torch.ones(1, 2, 3, 4)
    y = blocks.fit_to(x, (5, 2))
    assert y.shape == (1, 2, 5, 2)
    assert torch.all(y[..., :3, :] == 1)
    assert torch.all(y[..., 3:, :] == 0)


def test_residual_block_is_identity_plus_body():
    torch.manual_seed(0)
    block = blocks.ResidualBlock(4).eval()
    x = torch.randn(2, 4, 9, 7)
    torch.testing.assert_close(block(x), x + block.body(x))
    kinds = [type(m) for m in block.body.modules() if not isinstance(m, torch.nn.Sequential)]
    assert kinds == [torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.ELU] * 2


def test_conv_relu_bn_order():
    kinds = [type(m) for m in blocks.ConvReLUBN(3, 4)]
    assert kinds == [torch.nn.Conv2d, torch.nn.ReLU, torch.nn.BatchNorm2d]


# ---------------------------------------------------------------------------------------------- UNet
@pytest.mark.parametrize("size", SIZES)
def test_unet_forward_shape(size):
    torch.manual_seed(0)
    net = UNet(widths=TINY_UNET).eval()
    out = net(torch.rand(2, 3, *size))
    assert out.shape == (2, 2, *size)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_unet_levels_and_bn_after_relu():
    net = UNet()
    assert net.depth == 5
    assert len(net.encoders) == 5  # five encoding levels, scales 1 .. 1/16
    assert len(net.ups) == 4
    assert len(net.decoders) == 4
    assert [blk[0][0].out_channels for blk in net.encoders] == [32, 64, 128, 256, 512]
    for layer in net.modules():
        if isinstance(layer, blocks.ConvReLUBN):
            assert [type(m) for m in layer] == [torch.nn.Conv2d, torch.nn.ReLU, torch.nn.BatchNorm2d]
    assert net.head.out_channels == 2


def test_unet_padding_does_not_leak_into_the_interior():
    # an input already a multiple of 16 is not padded: the output at a pixel depends only on the input
    # near it, so a prediction on a crop equals the whole prediction far from the crop's border
    torch.manual_seed(0)
    net = UNet(widths=TINY_UNET).eval()
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        whole = net(x)
        part = net(x[..., :64, :64])
    torch.testing.assert_close(part[..., 8:24, 8:24], whole[..., 8:24, 8:24], atol=1e-5, rtol=1e-5)


def test_unet_pads_internally_by_reflection_and_crops_back():
    torch.manual_seed(0)
    net = UNet(widths=TINY_UNET).eval()
    x = torch.rand(1, 3, 21, 30)
    padded = torch.nn.functional.pad(x, (0, 2, 0, 11), mode="reflect")  # to 32 x 32
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(padded)[..., :21, :30])


def test_unet_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        UNet(widths=TINY_UNET)(torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="widths"):
        UNet(widths=(8,))


def test_unet_one_step_lowers_the_loss():
    torch.manual_seed(0)
    net = UNet(widths=TINY_UNET)
    x = torch.rand(2, 3, 32, 32)
    y = (torch.rand(2, 32, 32) > 0.7).float()
    w = torch.ones(2, 32, 32)
    before, after = _step_lowers(net, lambda: losses.weighted_background_loss(net(x), y, w))
    assert after < before


def test_unet_does_not_modify_its_input():
    x = torch.rand(1, 3, 20, 21)
    x0 = x.clone()
    UNet(widths=TINY_UNET)(x)
    torch.testing.assert_close(x, x0, rtol=0, atol=0)


# --------------------------------------------------------------------------------------------- KiNet
@pytest.mark.parametrize("size", SIZES)
def test_kinet_forward_shapes(size):
    torch.manual_seed(0)
    net = KiNet(base_width=2).eval()
    out = net(torch.rand(2, 3, *size))
    assert out.proximity.shape == (2, 3, *size)
    assert out.roi.shape == (2, 2, *size)
    assert out.proximity is out[0]  # a named tuple


def test_kinet_without_roi_branch_has_no_roi_output_and_no_roi_parameters():
    torch.manual_seed(0)
    net = KiNet(n_classes=4, base_width=2, roi_branch=False).eval()
    out = net(torch.rand(1, 3, 33, 31))
    assert out.roi is None
    assert out.proximity.shape == (1, 4, 33, 31)
    assert not [name for name in net.state_dict() if name.startswith("roi")]
    with_roi = KiNet(n_classes=4, base_width=2)
    assert sum(p.numel() for p in with_roi.parameters()) > sum(p.numel() for p in net.parameters())


def test_kinet_architecture():
    net = KiNet(base_width=4)
    assert len(net.down) == 4
    assert [blk.down[0].out_channels for blk in net.down] == [8, 16, 32, 64]  # doubling at each stride 2
    assert all(blk.down[0].stride == (2, 2) for blk in net.down)
    dropouts = [isinstance(blk.dropout, torch.nn.Dropout2d) for blk in net.down]
    assert dropouts == [False, False, True, True]
    assert net.down[3].dropout.p == 0.5
    assert net.head.out_channels == 3  # parallel per-class 3x3 output convolutions, one filter bank each
    assert net.head.kernel_size == (3, 3)
    assert len(net.roi_up) == 5  # five upsampling residual blocks in the ROI branch
    context_strides = [m[0].stride for m in net.context]
    assert context_strides == [(8, 8), (4, 4)]


def test_kinet_class_heads_are_parallel():
    # perturbing class 1's filters changes class 1's map only
    torch.manual_seed(0)
    net = KiNet(base_width=2, roi_branch=False).eval()
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        before = net(x).proximity
        net.head.weight[1] *= 1.5
        net.head.bias[1] += 1.0
        after = net(x).proximity
    torch.testing.assert_close(after[:, [0, 2]], before[:, [0, 2]])
    assert (after[:, 1] - before[:, 1]).abs().min() > 0


def test_kinet_eval_does_not_depend_on_the_batch():
    # standard BatchNorm2d: in eval() an image's prediction is the same alone or in a batch
    # (the public code's ContBatchNorm2d fails this)
    torch.manual_seed(0)
    net = KiNet(base_width=2)
    _calibrate_bn(net, lambda: torch.rand(2, 3, 32, 32))
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        alone = net(x[:1]).proximity
        batch = net(x).proximity[:1]
    torch.testing.assert_close(alone, batch, atol=1e-5, rtol=1e-5)


def test_kinet_one_step_lowers_the_joint_loss():
    torch.manual_seed(0)
    net = KiNet(base_width=4, dropout=0.5)
    x = torch.rand(4, 3, 32, 32)
    target = torch.rand(4, 3, 32, 32) ** 4
    roi = torch.randint(-1, 2, (4, 32, 32))
    has = torch.tensor([True, False, True, False])
    before, after = _step_lowers(net, lambda: losses.kinet_loss(net(x), target, roi, has), lr=1e-3)
    assert after < before


# ------------------------------------------------------------------------------------ colour helpers
def _random_rgb(rng, n=500):
    rgb = rng.random((n, 3))
    rgb[:50] *= 0.03  # dark colours: below the sRGB and Lab linear thresholds
    rgb[50:60] = [[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1],
                  [0.5, 0.5, 0.5], [0.04045, 0.04045, 0.04045]]  # fmt: skip
    return rgb.reshape(1, n, 3)


def _to_tensor(a):  # (1, N, 3) numpy -> (3, 1, N) torch
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


def _to_numpy(t):
    return t.detach().numpy().transpose(1, 2, 0)


def test_rgb_to_lab_tensor_matches_skimage():
    rng = np.random.default_rng(0)
    rgb = _random_rgb(rng)
    lab = _to_numpy(st.rgb_to_lab_tensor(_to_tensor(rgb)))
    np.testing.assert_allclose(lab, color.rgb2lab(rgb), atol=1e-9)
    lab32 = _to_numpy(st.rgb_to_lab_tensor(_to_tensor(rgb).float()))
    np.testing.assert_allclose(lab32, color.rgb2lab(rgb), atol=2e-3)


def test_lab_to_rgb_tensor_matches_skimage_in_and_out_of_gamut():
    rng = np.random.default_rng(1)
    lab = color.rgb2lab(_random_rgb(rng))
    wild = np.stack([rng.uniform(0, 100, 300), rng.uniform(-128, 128, 300), rng.uniform(-128, 128, 300)], -1)
    for ref_lab in (lab, wild[None]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skimage warns on negative Z, which it clips like we do
            ref = color.lab2rgb(ref_lab)
        got = _to_numpy(st.lab_to_rgb_tensor(_to_tensor(ref_lab)))
        np.testing.assert_allclose(got, ref, atol=1e-9)


def test_lab_round_trip_and_batch_shape():
    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 5, 6, dtype=torch.float64)
    lab = st.rgb_to_lab_tensor(rgb)
    assert lab.shape == rgb.shape
    assert lab.dtype == torch.float64
    torch.testing.assert_close(st.lab_to_rgb_tensor(lab), rgb, atol=1e-9, rtol=0)
    l_in, ab = st.split_lab(lab)
    assert l_in.shape == (2, 1, 5, 6)
    assert ab.shape == (2, 2, 5, 6)
    assert l_in.min() >= -1
    assert l_in.max() <= 1
    assert ab.abs().max() <= 1
    torch.testing.assert_close(st.merge_lab(l_in, ab), lab)


def test_colour_conversions_are_differentiable():
    torch.manual_seed(0)
    rgb = (torch.rand(1, 3, 3, 3, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()
    assert torch.autograd.gradcheck(st.rgb_to_lab_tensor, (rgb,))
    lab = st.rgb_to_lab_tensor(rgb.detach()).requires_grad_()
    assert torch.autograd.gradcheck(st.lab_to_rgb_tensor, (lab,))
    # finite gradients at black, where x ** (1/3) alone would give inf * 0 = nan
    black = torch.zeros(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    st.rgb_to_lab_tensor(black).sum().backward()
    assert torch.isfinite(black.grad).all()


def test_colour_helpers_reject_bad_input():
    with pytest.raises(ValueError, match=r"\(\*, 3, H, W\)"):
        st.rgb_to_lab_tensor(torch.rand(1, 4, 2, 2))
    with pytest.raises(TypeError, match="floating-point"):
        st.lab_to_rgb_tensor(torch.zeros(3, 2, 2, dtype=torch.uint8))
    with pytest.raises(TypeError, match="torch tensor"):
        st.rgb_to_lab_tensor(np.zeros((3, 2, 2)))


# -------------------------------------------------------------------------------- StainTransferNet
def _tiny_stain_net(**kw):
    return StainTransferNet(widths=(4, 8, 8), global_dim=8, hidden_dim=8, **kw)


@pytest.mark.parametrize("size", [(32, 32), (24, 40), (37, 50), (1, 1), (64, 9)])
def test_stain_transfer_forward_shapes(size):
    torch.manual_seed(0)
    net = _tiny_stain_net().eval()
    out = net(torch.rand(3, 1, *size) * 2 - 1)
    assert out.ab.shape == (3, 2, *size)
    assert out.class_logits.shape == (3, 4)
    assert out.global_vector.shape == (3, 8)
    assert out.ab.abs().max() <= 1.0  # tanh


def test_stain_transfer_encoder_reaches_one_eighth():
    net = StainTransferNet()  # paper widths: 224 -> 28 px, 256 channels
    feats = net.encode(torch.zeros(1, 1, 224, 224))
    assert feats.shape == (1, 256, 28, 28)
    strides = [m.stride[0] for m in net.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert strides == [2, 1, 2, 1, 2, 1, 1, 1]
    assert len([m for m in net.global_convs.modules() if isinstance(m, torch.nn.Conv2d)]) == 4


def test_stain_transfer_global_vector_is_used():
    torch.manual_seed(0)
    net = _tiny_stain_net()
    _calibrate_bn(net, lambda: torch.rand(4, 1, 32, 32) * 2 - 1)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        out = net(x)
        same = net(x, global_vector=out.global_vector)
        other = net(x, global_vector=out.global_vector + 1.0)
    torch.testing.assert_close(same.ab, out.ab)
    torch.testing.assert_close(same.class_logits, out.class_logits)
    assert (other.ab - out.ab).abs().max() > 1e-4


def test_stain_transfer_one_step_lowers_the_loss():
    torch.manual_seed(0)
    net = _tiny_stain_net()
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    target = 0.3 * torch.tanh(torch.randn(4, 2, 32, 32))
    labels = torch.tensor([0, 1, 2, 3])

    def loss():
        out = net(x)
        return losses.stain_transfer_loss(out.ab, target, out.class_logits, labels, class_weight=1 / 30)

    before, after = _step_lowers(net, loss)
    assert after < before


def test_class_loss_weight_changes_the_encoder_gradient():
    torch.manual_seed(0)
    net = _tiny_stain_net().double()
    x = torch.rand(4, 1, 32, 32, dtype=torch.float64) * 2 - 1
    target = 0.3 * torch.tanh(torch.randn(4, 2, 32, 32, dtype=torch.float64))
    labels = torch.tensor([0, 1, 2, 3])
    first_conv = net.encoder[0][0].weight

    def grad(weight):
        net.zero_grad()
        out = net(x)
        losses.stain_transfer_loss(out.ab, target, out.class_logits, labels, class_weight=weight).backward()
        return first_conv.grad.clone()

    g0, g30, g300 = grad(0.0), grad(1 / 30), grad(1 / 300)
    assert (g30 - g0).abs().max() > 1e-3 * g0.abs().max()
    # the class term enters linearly: its share of the gradient scales with the weight
    torch.testing.assert_close(g30 - g0, 10 * (g300 - g0), rtol=1e-7, atol=1e-12)


# ---------------------------------------------------------------------------------- normalize_image
@pytest.fixture(scope="module")
def colour_net():
    torch.manual_seed(0)
    net = StainTransferNet(widths=(4, 8, 8), global_dim=8, hidden_dim=8)
    _calibrate_bn(net, lambda: torch.rand(4, 1, 48, 48) * 2 - 1)
    return net


def _tissue_like(rng, shape=(150, 170)):
    from scipy import ndimage

    base = ndimage.gaussian_filter(rng.random(shape), 3)
    base = (base - base.min()) / np.ptp(base)
    rgb = np.stack([0.9 - 0.5 * base, 0.8 - 0.6 * base, 0.9 - 0.3 * base], -1)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def test_normalize_image_tiles_reassemble_the_whole_image(colour_net):
    # overlap // 4 = 80 px exceeds the receptive field (+-66 px): tiling must equal one whole-image pass
    # up to float rounding, so there are no seams at all, even for a random network whose output is very
    # sensitive to the tiles' border padding
    rng = np.random.default_rng(0)
    image = _tissue_like(rng, (600, 650))
    gvec = torch.linspace(-1, 1, 8).abs()
    whole = nk.models.normalize_image(colour_net, image, tile=1024, overlap=0, global_vector=gvec)
    tiled = nk.models.normalize_image(colour_net, image, tile=512, overlap=320, global_vector=gvec)
    assert tiled.shape == image.shape
    assert tiled.dtype == np.uint8
    assert whole.astype(float).std(axis=(0, 1)).max() > 5  # the colouring varies: not a vacuous test
    diff = np.abs(tiled.astype(int) - whole.astype(int))
    assert diff.max() <= 1
    assert diff.mean() < 0.01
    # the same image in plain non-overlapping tiles shows the tile borders
    naive = nk.models.normalize_image(colour_net, image, tile=128, overlap=0, global_vector=gvec)
    naive_diff = np.abs(naive.astype(int) - whole.astype(int)).max(axis=-1)
    border = np.zeros(image.shape[:2], bool)
    border[[127, 128, 255, 256], :] = True
    border[:, [127, 128, 255, 256]] = True
    assert naive_diff[border].mean() > 5


def test_normalize_image_default_global_context_and_luminance(colour_net):
    rng = np.random.default_rng(1)
    image = _tissue_like(rng, (61, 77))  # padded to 64 x 80 like the forward pass pads it
    image0 = image.copy()
    out = nk.models.normalize_image(colour_net, image, tile=128, overlap=0)
    np.testing.assert_array_equal(image, image0)  # input untouched
    # one tile covering the image: the same as the network's own forward pass
    lab = st.rgb_to_lab_tensor(torch.from_numpy(image / 255.0).permute(2, 0, 1)[None].float())
    l_in, _ = st.split_lab(lab)
    with torch.no_grad():
        ab = colour_net.eval()(l_in).ab
    ref = st.lab_to_rgb_tensor(st.merge_lab(l_in, ab))[0].permute(1, 2, 0).numpy()
    assert np.abs(out.astype(float) - np.round(ref * 255)).max() <= 1
    # the lightness is the input's (up to uint8 rounding) when the colours stay in the sRGB gamut
    mild = copy.deepcopy(colour_net)
    with torch.no_grad():
        mild.decoder[-2].weight *= 0.05
        mild.decoder[-2].bias.zero_()
    l_out = color.rgb2lab(nk.models.normalize_image(mild, image, tile=64, overlap=16))[..., 0]
    np.testing.assert_allclose(l_out, color.rgb2lab(image)[..., 0], atol=0.6)
    # a grey (H, W) image is accepted
    grey = nk.models.normalize_image(colour_net, image[..., 1], tile=64, overlap=16)
    assert grey.shape == image.shape


def test_normalize_image_rejects_bad_tiles(colour_net):
    image = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="multiples of 8"):
        nk.models.normalize_image(colour_net, image, tile=60)
    with pytest.raises(ValueError, match="overlap < tile"):
        nk.models.normalize_image(colour_net, image, tile=64, overlap=64)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        nk.models.normalize_image(colour_net, np.zeros((16, 16, 4), np.uint8))


# ----------------------------------------------------------------------------------------------- GPU
@pytest.mark.gpu
def test_models_follow_the_input_device():
    dev = torch.device("cuda")
    torch.manual_seed(0)
    x = torch.rand(2, 3, 37, 41, device=dev)
    assert UNet(widths=TINY_UNET).to(dev)(x).device.type == "cuda"
    out = KiNet(base_width=2).to(dev)(x)
    assert out.proximity.device.type == "cuda"
    assert out.roi.device.type == "cuda"
    lab = st.rgb_to_lab_tensor(x)
    assert lab.device.type == "cuda"
    torch.testing.assert_close(lab.cpu(), st.rgb_to_lab_tensor(x.cpu()), atol=1e-3, rtol=1e-4)
    net = _tiny_stain_net().to(dev)
    assert net(st.split_lab(lab)[0]).ab.device.type == "cuda"
    image = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    assert nk.models.normalize_image(net, image, tile=32, overlap=16).shape == (40, 50, 3)
