"""Pre/post-processors of the hybrid ACT policies: LeRobot's default pipeline, as for ACT.

Pre: rename, add the batch dimension, move to the policy's device, normalise with the dataset stats.
Post: unnormalise the action and move it to the CPU. Both are saved next to the weights
(``policy_preprocessor.json`` / ``policy_postprocessor.json`` + stats) and reloaded with the checkpoint.
LeRobot finds ``make_hybrid_act_{a,b,c}_pre_post_processors`` by naming convention.
"""

from typing import Any

import torch

from lerobot.processor import PolicyAction, PolicyProcessorPipeline, make_default_pre_post_processors

from .configuration_hybrid_act import HybridActConfig

Processors = tuple[PolicyProcessorPipeline[dict[str, Any], dict[str, Any]], PolicyProcessorPipeline[PolicyAction, PolicyAction]]


def make_hybrid_act_pre_post_processors(
    config: HybridActConfig, dataset_stats: dict[str, dict[str, torch.Tensor]] | None = None
) -> Processors:
    return make_default_pre_post_processors(config, dataset_stats, normalizer_device=config.device)


make_hybrid_act_a_pre_post_processors = make_hybrid_act_pre_post_processors
make_hybrid_act_b_pre_post_processors = make_hybrid_act_pre_post_processors
make_hybrid_act_c_pre_post_processors = make_hybrid_act_pre_post_processors
