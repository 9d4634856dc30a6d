"""``hybrid-act-policy-server``: LeRobot's async-inference policy server, serving hybrid_act_a/b/c too.

LeRobot's server (``lerobot.async_inference.policy_server``) only accepts the policy types listed in
``lerobot.async_inference.constants.SUPPORTED_POLICIES`` and never imports plugins. This command adds the
plugin's types to that list and runs the same gRPC server, with one addition: the robot client's policy
instructions are checked before the policy is loaded, so a wrong policy type or robot features that do
not match the policy's inputs are refused with a clear error (LeRobot's server would load the policy and
then fail on every observation, leaving the client waiting for actions forever).

    hybrid-act-policy-server --host=127.0.0.1 --port=8080 --fps=10
    python -m lerobot.async_inference.robot_client --server_address=127.0.0.1:8080 \\
        --robot.type=docking_sim --policy_type=hybrid_act_c --pretrained_name_or_path=<checkpoint> \\
        --policy_device=cpu --actions_per_chunk=8 --fps=10

Flags are LeRobot's ``PolicyServerConfig`` (host, port, fps, inference_latency, obs_queue_timeout).
"""

import logging
import pickle  # nosec: the same protocol as LeRobot's server
from concurrent import futures
from dataclasses import asdict
from pprint import pformat

try:
    import grpc
except ModuleNotFoundError as e:
    raise ModuleNotFoundError(
        "hybrid-act-policy-server needs LeRobot's async-inference extra (gRPC): pip install 'lerobot[async]'"
    ) from e
import draccus
from lerobot.async_inference.configs import PolicyServerConfig
from lerobot.async_inference.constants import SUPPORTED_POLICIES
from lerobot.async_inference.helpers import RemotePolicyConfig
from lerobot.async_inference.policy_server import PolicyServer
from lerobot.configs import FeatureType, PreTrainedConfig
from lerobot.transport import services_pb2_grpc  # type: ignore
from lerobot.utils.constants import OBS_IMAGES, OBS_STATE

from lerobot_hybrid_act.configuration_hybrid_act import POLICY_TYPES as PLUGIN_POLICIES


def register_plugin_policies() -> None:
    """Add the plugin's policy types to LeRobot's ``SUPPORTED_POLICIES`` (the list the server checks)."""
    import lerobot_hybrid_act  # noqa: F401  (registers the policy types with LeRobot's factories)

    for policy_type in PLUGIN_POLICIES:
        if policy_type not in SUPPORTED_POLICIES:
            SUPPORTED_POLICIES.append(policy_type)


def check_policy_instructions(specs: RemotePolicyConfig) -> str | None:
    """Why the server cannot serve these instructions (a message naming the fix), or None if it can."""
    if specs.policy_type not in SUPPORTED_POLICIES:
        return (
            f"Policy type {specs.policy_type!r} is not served here; supported: {SUPPORTED_POLICIES}. "
            "Pass one of them as --policy_type (hybrid_act_a/b/c are served by hybrid-act-policy-server)."
        )
    try:
        config = PreTrainedConfig.from_pretrained(specs.pretrained_name_or_path)
    except Exception as e:  # noqa: BLE001  (any load failure is reported to the client)
        return f"Cannot load the policy config from {specs.pretrained_name_or_path!r}: {e}"
    if config.type != specs.policy_type:
        return (
            f"{specs.pretrained_name_or_path!r} is a {config.type} checkpoint but the client asked for "
            f"{specs.policy_type}: pass --policy_type={config.type}."
        )

    # What LeRobot's server feeds the policy: observation.state plus every camera, resized to the policy's shape.
    sent = specs.lerobot_features
    cameras = sorted(k.removeprefix(f"{OBS_IMAGES}.") for k in sent if k.startswith(OBS_IMAGES))
    problems = []
    for key, feature in config.input_features.items():
        if feature.type is FeatureType.VISUAL:
            if key not in sent:
                problems.append(f"the policy needs {key}, the robot's cameras are {cameras}")
        elif key == OBS_STATE:
            got = tuple(sent[key]["shape"]) if key in sent else None
            if got != tuple(feature.shape):
                problems.append(f"the policy needs {key} of shape {tuple(feature.shape)}, the robot sends {got}")
        else:
            problems.append(
                f"the policy needs {key}, which LeRobot's robot client never sends (only {OBS_STATE} and cameras)"
            )
    for key in sent:
        if key.startswith(OBS_IMAGES) and key not in config.input_features:
            problems.append(f"the robot sends {key}, which the policy does not take: drop that camera")
    if problems:
        return (
            f"The robot's features do not match the inputs of {specs.pretrained_name_or_path!r}: "
            f"{'; '.join(problems)}. Train on data recorded with this robot's features (for docking_sim: "
            "hybrid-act-record --task docking_sim) or connect the robot the policy was trained for."
        )
    return None


class HybridActPolicyServer(PolicyServer):
    """LeRobot's ``PolicyServer``, refusing instructions it cannot serve before loading the policy."""

    def SendPolicyInstructions(self, request, context):  # noqa: N802  (gRPC method name)
        if self.running:
            problem = check_policy_instructions(pickle.loads(request.data))  # nosec
            if problem is not None:
                self.logger.error(f"Refusing policy instructions from {context.peer()}: {problem}")
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        return super().SendPolicyInstructions(request, context)


@draccus.wrap()
def serve(cfg: PolicyServerConfig) -> None:
    """``lerobot.async_inference.policy_server.serve`` with the plugin's types and ``HybridActPolicyServer``."""
    register_plugin_policies()
    logging.info(pformat(asdict(cfg)))
    policy_server = HybridActPolicyServer(cfg)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    services_pb2_grpc.add_AsyncInferenceServicer_to_server(policy_server, server)
    server.add_insecure_port(f"{cfg.host}:{cfg.port}")
    policy_server.logger.info(f"PolicyServer started on {cfg.host}:{cfg.port} (serving {SUPPORTED_POLICIES})")
    server.start()
    server.wait_for_termination()
    policy_server.logger.info("Server terminated")


def main() -> None:
    serve()


if __name__ == "__main__":
    main()
