package io.jemma.bench;

import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.infra.IterationParams;
import org.openjdk.jmh.runner.IterationType;

/**
 * Counts the work of a benchmark thread in giga-units (GFLOP or GB). JMH reports the public counter of the
 * subclasses as a rate (GFLOP/s, GB/s); the meter also times the measurement iterations itself and records the
 * rate in {@link Figures} for the ratio summary.
 */
public abstract class Meter {

    private boolean measuring;
    private long started;
    private long nanos;
    private double measured;
    private double units;

    /** Counts {@code giga} units of work done by one invocation. */
    final void add(double giga) {
        units += giga;
        set(get() + giga);
    }

    abstract double get();

    abstract void set(double value);

    /** The figure's name in the summary: the benchmark, plus its parameters if any. */
    String key(BenchmarkParams params) {
        String method = params.getBenchmark().substring(params.getBenchmark().lastIndexOf('.') + 1);
        StringBuilder key = new StringBuilder(method);
        for (String p : params.getParamsKeys()) {
            key.append(' ').append(p).append('=').append(params.getParam(p));
        }
        return key.toString();
    }

    @Setup(Level.Iteration)
    public void startIteration(IterationParams iteration) {
        set(0);
        units = 0;
        measuring = iteration.getType() == IterationType.MEASUREMENT;
        started = System.nanoTime();
    }

    @TearDown(Level.Iteration)
    public void endIteration() {
        if (measuring) {
            nanos += System.nanoTime() - started;
            measured += units;
        }
    }

    @TearDown(Level.Trial)
    public void record(BenchmarkParams params) {
        if (nanos > 0) {
            String key = key(params);
            Figures.add(key, measured / (nanos * 1e-9));
            if (key.startsWith(MatmulBenchmark.PREFILL) || key.startsWith(MatmulBenchmark.DECODE)) {
                Figures.printSummary();  // here, after recording: JMH orders the trial teardowns of states freely
            }
        }
    }

    /** Reported by JMH as GFLOP/s. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Flops extends Meter {
        public double gflop;

        @Override
        double get() {
            return gflop;
        }

        @Override
        void set(double value) {
            gflop = value;
        }
    }

    /** Reported by JMH as GB/s. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Bytes extends Meter {
        public double gbyte;

        @Override
        double get() {
            return gbyte;
        }

        @Override
        void set(double value) {
            gbyte = value;
        }
    }
}
