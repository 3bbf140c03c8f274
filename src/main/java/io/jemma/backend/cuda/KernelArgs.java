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

    /**
     * A struct passed by value, as its 8-byte words in field order (little-endian; two 4-byte fields share a
     * word, the first in the low half). One argument however many fields: JCuda marshals each argument
     * separately, about a microsecond of host time apiece.
     */
    KernelArgs words(long... values) {
        args.add(Pointer.to(values));
        return this;
    }

    /** Two 4-byte fields of a struct as one word of {@link #words}, {@code first} in the low half. */
    static long pack(int first, int second) {
        return (first & 0xFFFFFFFFL) | ((long) second << 32);
    }

    /** The {@code void**} cuLaunchKernel takes: one pointer to each argument's value. */
    Pointer build() {
        return Pointer.to(args.toArray(new Pointer[0]));
    }
}
