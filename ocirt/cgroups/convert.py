"""cgroup v1 values (the OCI spec's units) to their cgroup v2 equivalents."""
import math


def cpu_shares_to_weight(shares):
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000].

    Source: opencontainers/cgroups ConvertCPUSharesToCgroupV2Value as of
    runc 1.3 (runc PR #4785; crun issue #1721, the same formula in crun): a
    quadratic in log2(shares) through the three points min (2 -> 1), default
    (1024 -> 100) and max (262144 -> 10000), replacing the old linear
    1 + (shares - 2) * 9999 / 262142, which mapped the default 1024 to 39."""
    if shares == 0:
        return 0
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    l = math.log2(shares)
    return math.ceil(10 ** ((l * l + 125 * l) / 612.0 - 7.0 / 34.0))


def blkio_weight_to_io_weight(weight):
    """blkio.weight [10, 1000] -> io.weight [1, 10000].

    Source: runc libcontainer/cgroups/utils.go ConvertBlkIOToIOWeightValue
    (runc 1.1 to 1.3): 1 + (weight - 10) * 9999 / 990, integer division."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def swap_to_v2(swap, memory):
    """OCI memory.swap is memory+swap (v1 memsw); v2 memory.swap.max is swap
    alone. Returns the v2 value (-1 = max, None = leave alone) or raises
    ValueError. Source: runc ConvertMemorySwapToCgroupV2Value (runc 1.3)."""
    if memory == -1 and not swap:
        return -1          # both unlimited, as v1 would be
    if swap == -1:
        return -1
    if not swap:
        return None
    if not memory or memory == -1:
        raise ValueError("a swap limit needs a memory limit")
    if swap < memory:
        raise ValueError(f"memory+swap ({swap}) must be at least the memory limit ({memory})")
    return swap - memory
