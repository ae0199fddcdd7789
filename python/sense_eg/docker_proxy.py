"""Enterprise Gateway's DockerProcessProxy for kernels on the host's network.

EG 3.3's DockerProcessProxy takes the kernel's address from the container's entry under
EG_DOCKER_NETWORK. A container on ``--network host`` has no address of its own there (EG reads
``''`` and would connect nowhere): the kernel listens on the Docker host itself, so this proxy uses
``SENSE_DOCKER_KERNEL_IP`` (default ``127.0.0.1``: EG and the engine on one machine, as in the
container suite). On other networks it behaves exactly as EG's class.

Put this package on EG's PYTHONPATH and name
``sense_eg.docker_proxy.SenseDockerProcessProxy`` in the kernelspec's ``process_proxy``.
"""

import ipaddress
import os

from enterprise_gateway.services.processproxies.docker_swarm import DockerProcessProxy


def kernel_ip() -> str:
    """The address EG connects to for host-network kernels; refuses anything but an IP address."""
    value = os.environ.get("SENSE_DOCKER_KERNEL_IP", "127.0.0.1")
    return str(ipaddress.ip_address(value))


# EG's own settings the launch script needs; EG gives it the kernel's environment, not its own.
CONVEYED = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "EG_CLIENT_ENVS", "SENSE_DOCKER_KERNEL_IP")


class SenseDockerProcessProxy(DockerProcessProxy):
    """DockerProcessProxy that also works for kernels on the host network."""

    def launch_process(self, kernel_cmd, **kwargs):
        """Launches the container through the kernelspec's launch script, telling it how to reach Docker."""
        for name in CONVEYED:
            if name in os.environ:
                kwargs["env"][name] = os.environ[name]
        return super().launch_process(kernel_cmd, **kwargs)

    def get_container_status(self, iteration):
        """The container's state; for a host-network container the assigned address is the host's."""
        status = super().get_container_status(iteration)
        if self.assigned_host and not self.assigned_ip:
            self.assigned_ip = kernel_ip()
        return status
