"""Group-relative (GRPO) sequence advantages."""

from __future__ import annotations

import torch


def group_advantages(rewards: torch.Tensor, group_size: int, scale: bool = True, eps: float = 1e-4) -> torch.Tensor:
    """GRPO advantages ``A_k = (r_k - mean_g(r)) / (std_g(r) + eps)`` within consecutive groups.

    Args:
        rewards: ``(B,)`` rewards, ``B = num_groups * group_size``, the ``group_size`` rollouts of one prompt
            contiguous (TRL's layout).
        group_size: ``G``, rollouts per prompt.
        scale: divide by the group's standard deviation (TRL's ``scale_rewards="group"``); ``False`` is
            Dr. GRPO's mean-centering only (``scale_rewards="none"``).
        eps: added to the standard deviation; TRL uses ``1e-4``.

    Returns:
        ``(B,)`` advantages, float32 (float64 for float64 rewards). An all-equal group (all correct or all wrong)
        gives exactly zero.
    """
    if rewards.dim() != 1 or rewards.numel() % group_size != 0:
        raise ValueError(
            f"rewards must be 1-D with a length divisible by group_size={group_size}; got {tuple(rewards.shape)}"
        )
    grouped = rewards.to(torch.float64 if rewards.dtype == torch.float64 else torch.float32).view(-1, group_size)
    centered = grouped - grouped.mean(dim=1, keepdim=True)
    if scale:
        std = grouped.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(centered[:, :1])
        centered = centered / (std + eps)
    return centered.view(-1)
