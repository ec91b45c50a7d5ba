using System.Runtime.CompilerServices;
using TorchSharp;

namespace BabyPpo.Tests;

internal static class TestSetup
{
    /// <summary>
    /// xunit runs test classes in parallel; with libtorch's default of one intra-op thread per core,
    /// two classes on two cores oversubscribe them, and libtorch's threads then stall waiting for
    /// each other (a forward pass measured 50× slower). One thread per test keeps the cores busy
    /// without that.
    /// </summary>
    [ModuleInitializer]
    internal static void OneTorchThreadPerTest() => torch.set_num_threads(1);
}
