package io.jemma.backend.cuda;

import java.util.ArrayList;
import java.util.List;
import jcuda.Pointer;

/**
 * The argument list of one kernel launch, in the order of the kernel's C signature. Device pointers go
 * as their 64-bit addresses (0 for a null pointer); {@code long} parameters of the kernels are int64_t.
 */
final class KernelArgs {
    private final List<Pointer> args = new ArrayList<>(20);

    KernelArgs ptr(long address) {
        args.add(Pointer.to(new long[] {address}));
        return this;
    }

    KernelArgs i64(long value) {
        args.add(Pointer.to(new long[] {value}));
        return this;
    }

    KernelArgs i32(int value) {
        args.add(Pointer.to(new int[] {value}));
        return this;
    }

    KernelArgs f32(float value) {
        args.add(Pointer.to(new float[] {value}));
        return this;
    }

    /** The {@code void**} cuLaunchKernel takes: one pointer to each argument's value. */
    Pointer build() {
        return Pointer.to(args.toArray(new Pointer[0]));
    }
}
