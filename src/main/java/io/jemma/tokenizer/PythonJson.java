package io.jemma.tokenizer;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The {@code tojson} filter transformers installs for chat templates: Python's
 * {@code json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)}, whose
 * default separators put a space after ',' and ':' (jinjava's own filter writes compact JSON).
 */
final class PythonJson implements Filter {

    @Override
    public String getName() {
        return "tojson";
    }

    @Override
    public Object filter(Object value, JinjavaInterpreter interpreter, String... args) {
        return dumps(value, null, false, null, null);
    }

    @Override
    public Object filter(
            Object value,
            JinjavaInterpreter interpreter,
            Object[] args,
            Map<String, Object> kwargs) {
        Object indent =
                kwargs.containsKey("indent")
                        ? kwargs.get("indent")
                        : args.length > 0 ? args[0] : null;
        String indentText =
                indent == null
                        ? null
                        : indent instanceof Number n
                                ? " ".repeat(Math.max(0, n.intValue()))
                                : indent.toString();
        boolean sortKeys = Boolean.TRUE.equals(kwargs.get("sort_keys"));
        String itemSeparator = indentText == null ? ", " : ",";
        String keySeparator = ": ";
        if (kwargs.get("separators") instanceof List<?> separators && separators.size() == 2) {
            itemSeparator = String.valueOf(separators.get(0));
            keySeparator = String.valueOf(separators.get(1));
        }
        return dumps(value, indentText, sortKeys, itemSeparator, keySeparator);
    }

    static String dumps(
            Object value,
            String indent,
            boolean sortKeys,
            String itemSeparator,
            String keySeparator) {
        StringBuilder out = new StringBuilder();
        write(
                out,
                value,
                indent,
                0,
                sortKeys,
                itemSeparator == null ? (indent == null ? ", " : ",") : itemSeparator,
                keySeparator == null ? ": " : keySeparator);
        return out.toString();
    }

    private static void write(
            StringBuilder out,
            Object value,
            String indent,
            int depth,
            boolean sortKeys,
            String itemSep,
            String keySep) {
        switch (value) {
            case null -> out.append("null");
            case Boolean b -> out.append(b ? "true" : "false");
            case Integer i -> out.append(i);
            case Long l -> out.append(l);
            case Short s -> out.append(s);
            case Byte b -> out.append(b);
            case Number n -> out.append(pythonFloat(n.doubleValue()));
            case CharSequence s -> quote(out, s.toString());
            case Map<?, ?> map -> {
                List<Map.Entry<?, ?>> entries = new ArrayList<>(map.entrySet());
                if (sortKeys) {
                    entries.sort(
                            (a, b) ->
                                    String.valueOf(a.getKey())
                                            .compareTo(String.valueOf(b.getKey())));
                }
                if (entries.isEmpty()) {
                    out.append("{}");
                    return;
                }
                out.append('{');
                for (int i = 0; i < entries.size(); i++) {
                    if (i > 0) {
                        out.append(itemSep);
                    }
                    newline(out, indent, depth + 1);
                    quote(out, String.valueOf(entries.get(i).getKey()));
                    out.append(keySep);
                    write(
                            out,
                            entries.get(i).getValue(),
                            indent,
                            depth + 1,
                            sortKeys,
                            itemSep,
                            keySep);
                }
                newline(out, indent, depth);
                out.append('}');
            }
            case Iterable<?> items -> {
                List<Object> list = new ArrayList<>();
                items.forEach(list::add);
                if (list.isEmpty()) {
                    out.append("[]");
                    return;
                }
                out.append('[');
                for (int i = 0; i < list.size(); i++) {
                    if (i > 0) {
                        out.append(itemSep);
                    }
                    newline(out, indent, depth + 1);
                    write(out, list.get(i), indent, depth + 1, sortKeys, itemSep, keySep);
                }
                newline(out, indent, depth);
                out.append(']');
            }
            default -> quote(out, value.toString());
        }
    }

    private static void newline(StringBuilder out, String indent, int depth) {
        if (indent != null) {
            out.append('\n').append(indent.repeat(depth));
        }
    }

    /** Python's repr of a float: shortest round-trip digits, ".0" for integral values, exponent form like 1e+20. */
    static String pythonFloat(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        if (d == Math.rint(d) && Math.abs(d) < 1e16) {
            return String.format(java.util.Locale.ROOT, "%.1f", d);
        }
        String s = Double.toString(d);
        int e = s.indexOf('E');
        if (e < 0) {
            return s;
        }
        String mantissa = s.substring(0, e);
        if (mantissa.endsWith(".0")) {
            mantissa = mantissa.substring(0, mantissa.length() - 2);
        }
        int exponent = Integer.parseInt(s.substring(e + 1));
        if (exponent >= -4 && exponent < 16) {
            return new java.math.BigDecimal(mantissa + "E" + exponent).toPlainString();
        }
        return mantissa
                + "e"
                + (exponent < 0 ? "-" : "+")
                + String.format("%02d", Math.abs(exponent));
    }

    /** A JSON string as Python writes it with ensure_ascii=False: only quotes, backslashes and control characters are escaped. */
    private static void quote(StringBuilder out, String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }
}
