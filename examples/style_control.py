"""Sample diverse action chunks from one observation by drawing different style latents z.

    python examples/style_control.py --policy-path outputs/quickstart/train/hybrid_act_c_s1_4000/checkpoints/last/pretrained_model \
        --dataset-root outputs/quickstart/data/docking_50x2 --repo-id local/docking_quickstart --samples 8

Loads a trained hybrid_act_b/c checkpoint with its processors, takes frame `--frame` of the dataset,
and prints (1) the spread of chunks sampled with fresh z ~ p(z|obs) (``policy.sample_style``), (2) the spread when
z is held fixed (only the diffusion noise varies), and (3) the first action of each chunk, unnormalised.
"""

import argparse

import torch
from lerobot.datasets import LeRobotDataset
from lerobot.policies.factory import get_policy_class, make_pre_post_processors
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.configs import PreTrainedConfig

import lerobot_hybrid_act  # noqa: F401  (registers hybrid_act_a/b/c)


def pairwise_spread(chunks: torch.Tensor) -> float:
    """Mean L2 distance between the flattened chunks of a (K, T, D) stack."""
    flat = chunks.flatten(1)
    return torch.cdist(flat, flat).sum().item() / (len(flat) * (len(flat) - 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy-path", required=True)
    parser.add_argument("--dataset-root", required=True)
    parser.add_argument("--repo-id", required=True)
    parser.add_argument("--frame", type=int, default=0)
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()

    config = PreTrainedConfig.from_pretrained(args.policy_path)
    policy: PreTrainedPolicy = get_policy_class(config.type).from_pretrained(args.policy_path)
    preprocess, postprocess = make_pre_post_processors(config, pretrained_path=args.policy_path)
    item = LeRobotDataset(args.repo_id, root=args.dataset_root)[args.frame]
    obs = preprocess({k: v for k, v in item.items() if k in config.input_features})

    gen = lambda seed: torch.Generator().manual_seed(seed)  # noqa: E731
    fresh = torch.cat([policy.predict_action_chunk(obs, z=policy.sample_style(obs, gen(s)), generator=gen(s))
                       for s in range(args.samples)])
    z = policy.sample_style(obs, gen(0))
    held = torch.cat([policy.predict_action_chunk(obs, z=z, generator=gen(s)) for s in range(args.samples)])
    print(f"{config.type}: {args.samples} chunks from one observation (normalised action space)")
    print(f"  spread with fresh z ~ p(z|obs): {pairwise_spread(fresh):.4f}")
    print(f"  spread with z held fixed:       {pairwise_spread(held):.4f}")
    first = postprocess(fresh[:, 0])
    for i, action in enumerate(first):
        print(f"  sample {i}: first action {action.numpy().round(3).tolist()}")


if __name__ == "__main__":
    main()
