"""Ensembles inside one module: M independent member networks trained in one pass over the data.

The paper's error bars come from 100 networks trained on bootstrap resamples (de los Rios et al.
2023, section 5.3). Training them one after another would read the data set once per member;
here M members live in one :class:`torch.nn.Module`, all see the same input batch ``x`` of
shape ``(B, C, H, W)`` and answer ``(B, M, n_outputs)``, and no member's output depends on
another member's weights.

Layout
------
Every parameter and buffer of a member network is **member-major along its first dimension**:
member ``m`` owns the block ``[m * s, (m + 1) * s)`` where ``s`` is the size of that dimension
in the single-member network. The layers that keep this invariant:

* the first convolution is an ordinary :class:`~torch.nn.Conv2d` with ``M * out_channels``
  outputs (the input is shared, the kernels are not): :func:`member_conv2d` with
  ``shared_input=True``;
* later convolutions use ``groups=M`` on member-major channels, so group ``m`` reads only
  member ``m``'s channels: :func:`member_conv2d`;
* :class:`~torch.nn.BatchNorm2d` over ``M * c`` channels is per member as it is;
* dense layers are :class:`MemberLinear` (weight ``(M, out, in)``) and
  :class:`MemberBatchNorm1d`, on activations of shape ``(B, M, features)`` made by
  :func:`flatten_members`.

Cost on a CPU. Grouped tensors M times a lone network's outgrow every cache, and PyTorch's
grouped CPU convolution is slower than the same groups one by one: a training step of
architecture B at M = 100 (batch 32, 2 threads) cost 1.55x a lone network's per member. The
paper CNNs therefore run their convolutional part :func:`member_by_member` on a CPU (1.04x per
member, dense layers stay batched over members), and :class:`MemberConv2d` convolves group by
group there; on a GPU the grouped kernels fill the device that one small network leaves idle.

Because of the invariant, :func:`extract_member` can cut any member out as a standalone
``n_members=1`` network, which gives exactly that member's outputs. :func:`mc_dropout` is the
other ensemble the stage offers: one network, sampled with its dropout left on.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

#: Module types that :func:`mc_dropout` keeps stochastic.
DROPOUT_TYPES = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)


def check_n_members(n_members: int) -> None:
    """Raise a :class:`ValueError` unless ``n_members`` is a positive integer."""
    if isinstance(n_members, bool) or not isinstance(n_members, int) or n_members < 1:
        raise ValueError(f"n_members must be a positive integer, got {n_members!r}")


class MemberNetwork(nn.Module, ABC):
    """A network of ``n_members`` independent members laid out member-major (see the module).

    Parameters
    ----------
    n_members : int
        Number of members M; the output has shape ``(B, M, n_outputs)``.
    """

    def __init__(self, *, n_members: int) -> None:
        check_n_members(n_members)
        super().__init__()
        self.n_members = n_members

    @abstractmethod
    def make_single(self) -> MemberNetwork:
        """A freshly initialised ``n_members=1`` network with this one's other settings."""


class MemberConv2d(nn.Conv2d):
    """A member-grouped convolution (``groups=M``) that runs one convolution per member on a CPU.

    PyTorch's CPU grouped convolution is slower than the same groups convolved one by one:
    forward and backward of architecture B's second convolution for 20 members took 1.40 s
    grouped, 1.01 s as 20 convolutions and 0.79 s for 20 separate networks (one thread). The
    weights are the grouped layout either way; on other devices the grouped kernel runs.

    Parameters
    ----------
    *args, **kwargs
        As :class:`torch.nn.Conv2d` (see :func:`member_conv2d`).
    n_members : int
        Number of members M.
    """

    def __init__(self, *args: Any, n_members: int, **kwargs: Any) -> None:
        check_n_members(n_members)
        super().__init__(*args, **kwargs)
        self.n_members = n_members

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.groups == 1 or input.device.type != "cpu" or self.padding_mode != "zeros":
            return super()._conv_forward(input, weight, bias)
        out_per_group = self.out_channels // self.groups
        inputs = input.split(self.in_channels // self.groups, dim=1)
        weights = weight.split(out_per_group, dim=0)
        biases = bias.split(out_per_group) if bias is not None else (None,) * self.groups
        return torch.cat(
            [
                nn.functional.conv2d(x, w, b, self.stride, self.padding, self.dilation)
                for x, w, b in zip(inputs, weights, biases, strict=True)
            ],
            dim=1,
        )


def member_conv2d(
    *,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    n_members: int,
    stride: int = 1,
    padding: int = 0,
    bias: bool = True,
    shared_input: bool = False,
) -> MemberConv2d:
    """A convolution holding one kernel bank per member, channels member-major.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of one member (the input image's channels when ``shared_input``).
    kernel_size, stride, padding : int
        As :class:`torch.nn.Conv2d`.
    n_members : int
        Number of members M.
    bias : bool
        Whether the convolution has a bias.
    shared_input : bool
        True for the first convolution, whose input (the image) every member reads: an
        ordinary convolution with ``M * out_channels`` outputs. Otherwise the input holds
        ``M * in_channels`` member-major channels and the convolution has ``groups=M``.

    Returns
    -------
    MemberConv2d
        PyTorch's default initialisation is per member already: it draws from bounds set by
        the fan-in of one group, which is one member's.
    """
    return MemberConv2d(
        in_channels if shared_input else n_members * in_channels,
        n_members * out_channels,
        kernel_size,
        stride=stride,
        padding=padding,
        bias=bias,
        groups=1 if shared_input else n_members,
        n_members=n_members,
    )


#: Layers that act on each member's channels alike and hold no per-member state.
_STATELESS_LAYERS = (nn.ReLU, nn.MaxPool2d, nn.Dropout)


def runs_member_by_member(layers: nn.Sequential) -> bool:
    """Whether :func:`member_by_member` supports every layer of ``layers``."""
    return all(
        isinstance(layer, (MemberConv2d, *_STATELESS_LAYERS))
        or (
            isinstance(layer, nn.BatchNorm2d)
            and layer.affine
            and layer.track_running_stats
            and layer.momentum is not None
        )
        for layer in layers
    )


def member_by_member(layers: nn.Sequential, x: Tensor, *, n_members: int) -> Tensor:
    """``layers(x)`` for member-grouped convolutional ``layers``, computed one member at a time.

    On a CPU the members' arithmetic runs one after the other anyway; member by member, every
    operation works on one member's activations, as a lone network's would, instead of tensors
    M times as large that no cache holds. One training step of architecture B (batch 32, 2
    threads) at M = 100 cost 1.55x a lone network's per member grouped, 1.04x member by member
    (``benchmarks/bench_train.py``). Same parameters, buffers and results as the grouped forward
    (dropout draws its masks member by member).

    Parameters
    ----------
    layers : nn.Sequential
        Layers accepted by :func:`runs_member_by_member`.
    x : Tensor
        The shared input ``(B, C, H, W)``; the first layer must be a ``shared_input``
        convolution.
    n_members : int
        Number of members M.

    Returns
    -------
    Tensor
        ``(B, M * c, h, w)``, member-major as ``layers(x)``.
    """
    # Split once per forward: autograd then joins the members' gradients in one copy per
    # tensor, where slicing per member would add M full-size gradients per tensor.
    pieces = [_member_pieces(layer, n_members=n_members) for layer in layers]
    outputs = []
    for member in range(n_members):
        h = x
        for layer, parts in zip(layers, pieces, strict=True):
            h = _member_layer(layer, parts, h, member=member)
        outputs.append(h)
    for layer in layers:
        # The grouped forward counts each batch once per normalisation layer.
        if isinstance(layer, nn.BatchNorm2d) and layer.training:
            assert layer.num_batches_tracked is not None
            layer.num_batches_tracked.add_(1)
    return torch.cat(outputs, dim=1)


def _member_pieces(layer: nn.Module, *, n_members: int) -> dict[str, tuple[Tensor, ...]]:
    """Each member's view of the layer's parameters and buffers (none for stateless layers)."""
    if isinstance(layer, MemberConv2d):
        rows = layer.out_channels // n_members
        pieces = {"weight": layer.weight.split(rows)}
        if layer.bias is not None:
            pieces["bias"] = layer.bias.split(rows)
        return pieces
    if isinstance(layer, nn.BatchNorm2d):
        width = layer.num_features // n_members
        assert layer.running_mean is not None and layer.running_var is not None
        return {
            "weight": layer.weight.split(width),
            "bias": layer.bias.split(width),
            # Views: the running statistics update in place, as in the grouped forward.
            "running_mean": layer.running_mean.split(width),
            "running_var": layer.running_var.split(width),
        }
    return {}


def _member_layer(
    layer: nn.Module, pieces: dict[str, tuple[Tensor, ...]], h: Tensor, *, member: int
) -> Tensor:
    if isinstance(layer, MemberConv2d):
        bias = pieces["bias"][member] if "bias" in pieces else None
        return nn.functional.conv2d(
            h, pieces["weight"][member], bias, layer.stride, layer.padding, layer.dilation
        )
    if isinstance(layer, nn.BatchNorm2d):
        return nn.functional.batch_norm(
            h,
            pieces["running_mean"][member],
            pieces["running_var"][member],
            pieces["weight"][member],
            pieces["bias"][member],
            layer.training,
            layer.momentum or 0.0,
            layer.eps,
        )
    output: Tensor = layer(h)
    return output


def stack_members(module: nn.Module, members: Sequence[nn.Module]) -> None:
    """Make every parameter and non-scalar buffer of ``module`` (``members[0]``) the
    ``members``' tensors of it concatenated along the first dimension (member-major).

    For networks with no grouped form (the U-Nets, dm2gal's CNN): each member initialised as a
    lone network, all of them held in one module so early stopping's per-member copy and
    :func:`extract_member` treat them as any ensemble; :func:`stacked_member_outputs` runs them.
    Scalar buffers (``num_batches_tracked``) stay ``module``'s own, shared by all members.
    """
    for name, _ in list(module.named_parameters()):
        owner, _, leaf = name.rpartition(".")
        stacked = torch.cat([member.get_parameter(name).detach() for member in members])
        setattr(module.get_submodule(owner), leaf, nn.Parameter(stacked))
    for name, buffer in list(module.named_buffers()):
        if buffer.ndim:
            owner, _, leaf = name.rpartition(".")
            stacked = torch.cat([member.get_buffer(name) for member in members])
            module.get_submodule(owner).register_buffer(leaf, stacked)


def stacked_member_outputs(module: nn.Module, x: Tensor, *, n_members: int) -> list[Tensor]:
    """Each member's ``module(x)`` for a module of :func:`stack_members`, one member at a time
    on its slices of the stacked tensors (running statistics update in place through them)."""
    # Split once per forward: autograd joins the members' gradients in one copy per tensor.
    tensors = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    pieces = {
        name: tensor.split(tensor.shape[0] // n_members)
        for name, tensor in tensors.items()
        if tensor.ndim
    }
    return [
        functional_call(module, {name: part[member] for name, part in pieces.items()}, x)
        for member in range(n_members)
    ]


def flatten_members(x: Tensor, *, n_members: int) -> Tensor:
    """View member-major feature maps ``(B, M * c, h, w)`` as ``(B, M, c * h * w)``."""
    return x.reshape(x.shape[0], n_members, -1)


class MemberLinear(nn.Module):
    """One dense layer per member: ``(B, M, in_features) -> (B, M, out_features)``.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of one member's layer.
    n_members : int
        Number of members M.

    Attributes
    ----------
    weight : torch.nn.Parameter
        Shape ``(M, out_features, in_features)``, each member initialised as
        :class:`torch.nn.Linear` initialises its weight.
    bias : torch.nn.Parameter
        Shape ``(M, out_features)``, initialised as :class:`torch.nn.Linear`'s bias.
    """

    def __init__(self, *, in_features: int, out_features: int, n_members: int) -> None:
        check_n_members(n_members)
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.n_members = n_members
        self.weight = nn.Parameter(torch.empty(n_members, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(n_members, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw each member's weight and bias as :meth:`torch.nn.Linear.reset_parameters`."""
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        for member in range(self.n_members):
            # Per member slice, so kaiming_uniform_ sees the fan-in of an (out, in) matrix.
            nn.init.kaiming_uniform_(self.weight[member], a=math.sqrt(5))
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        """Apply member ``m``'s layer to ``x[:, m]`` for every member."""
        out = torch.baddbmm(self.bias.unsqueeze(1), x.transpose(0, 1), self.weight.transpose(1, 2))
        return out.transpose(0, 1)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"n_members={self.n_members}"
        )


class MemberBatchNorm1d(nn.BatchNorm1d):
    """Batch normalisation of ``(B, M, features)`` activations, separate for every member.

    Parameters
    ----------
    num_features : int
        Features of one member.
    n_members : int
        Number of members M; the statistics and affine parameters have ``M * num_features``
        member-major entries.
    eps, momentum : float
        As :class:`torch.nn.BatchNorm1d`.
    """

    def __init__(
        self, *, num_features: int, n_members: int, eps: float = 1e-5, momentum: float = 0.1
    ) -> None:
        check_n_members(n_members)
        super().__init__(n_members * num_features, eps=eps, momentum=momentum)
        self.n_members = n_members

    def forward(self, input: Tensor) -> Tensor:
        """Normalise each of the ``M * features`` columns over the batch."""
        batch = input.shape[0]
        return super().forward(input.reshape(batch, -1)).view(input.shape)


def extract_member(model: MemberNetwork, member: int) -> MemberNetwork:
    """Cut member ``member`` out of ``model`` as a standalone ``n_members=1`` network.

    Parameters
    ----------
    model : MemberNetwork
        The ensemble.
    member : int
        Index of the member, ``0 <= member < model.n_members``.

    Returns
    -------
    MemberNetwork
        A network with copies of the member's parameters and buffers (batch-norm running
        statistics included), on their device and dtype, in ``model``'s train/eval mode. In
        eval mode its output ``(B, 1, n_outputs)`` equals ``model(x)[:, member:member + 1]``.

    Raises
    ------
    ValueError
        If ``member`` is out of range.
    RuntimeError
        If a tensor of ``model`` does not follow the member-major layout.
    """
    if isinstance(member, bool) or not isinstance(member, int):
        raise ValueError(f"member must be an integer index, got {member!r}")
    if not 0 <= member < model.n_members:
        raise ValueError(f"member must be in [0, {model.n_members}), got {member}")
    single = model.make_single()
    whole = model.state_dict()
    sliced: dict[str, Tensor] = {}
    for name, target in single.state_dict().items():
        source = whole[name]
        if target.ndim == 0:
            # Scalar buffers (num_batches_tracked) are shared by all members.
            sliced[name] = source.clone()
            continue
        size = target.shape[0]
        if source.shape != (model.n_members * size, *target.shape[1:]):
            raise RuntimeError(
                f"{name} has shape {tuple(source.shape)}, expected "
                f"({model.n_members} * {size}, {', '.join(map(str, target.shape[1:]))}) "
                "for the member-major layout"
            )
        sliced[name] = source[member * size : (member + 1) * size].clone()
    # assign=True keeps the source tensors' device and dtype without any device handling here.
    single.load_state_dict(sliced, assign=True)
    single.train(model.training)
    return single


@contextmanager
def mc_dropout(model: nn.Module) -> Iterator[nn.Module]:
    """Evaluate ``model`` with its dropout still sampling (Monte Carlo dropout).

    Inside the context every module is in eval mode (batch normalisation uses its running
    statistics) except the dropout modules, which keep drawing masks, so repeated forward
    passes sample the network's predictive distribution. Each module's previous mode is
    restored on exit.

    Parameters
    ----------
    model : torch.nn.Module
        Any module.

    Yields
    ------
    torch.nn.Module
        ``model`` itself.
    """
    previous = {module: module.training for module in model.modules()}
    model.eval()
    for module in model.modules():
        if isinstance(module, DROPOUT_TYPES):
            module.train()
    try:
        yield model
    finally:
        for module, training in previous.items():
            module.training = training
