package io.jemma.tokenizer;

import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Python's str methods for jinjava, which otherwise only offers Java's (no {@code startswith},
 * and a regex-based {@code split}). Chat templates call these on message contents.
 */
final class PythonStringMethods extends ELResolver {

    private static final Set<String> NAMES =
            Set.of(
                    "startswith",
                    "endswith",
                    "strip",
                    "lstrip",
                    "rstrip",
                    "split",
                    "rsplit",
                    "splitlines",
                    "upper",
                    "lower",
                    "title",
                    "capitalize",
                    "replace",
                    "find",
                    "rfind",
                    "count",
                    "join",
                    "isdigit",
                    "isalpha",
                    "isalnum",
                    "isspace",
                    "isupper",
                    "islower",
                    "removeprefix",
                    "removesuffix");

    @Override
    public Object invoke(
            ELContext context, Object base, Object method, Class<?>[] types, Object[] params) {
        if (!(base instanceof String s)
                || !(method instanceof String name)
                || !NAMES.contains(name)) {
            return null;
        }
        Object[] args = params == null ? new Object[0] : params;
        Object result = call(s, name, args);
        context.setPropertyResolved(true);
        return result;
    }

    static Object call(String s, String name, Object[] args) {
        return switch (name) {
            case "startswith" -> affixMatches(s, arg(args, 0), true);
            case "endswith" -> affixMatches(s, arg(args, 0), false);
            case "strip" -> rstrip(lstrip(s, chars(args)), chars(args));
            case "lstrip" -> lstrip(s, chars(args));
            case "rstrip" -> rstrip(s, chars(args));
            case "split" -> split(s, (String) arg(args, 0), maxSplit(args), false);
            case "rsplit" -> split(s, (String) arg(args, 0), maxSplit(args), true);
            case "splitlines" -> new ArrayList<>(s.lines().toList());
            case "upper" -> s.toUpperCase(Locale.ROOT);
            case "lower" -> s.toLowerCase(Locale.ROOT);
            case "title" -> title(s);
            case "capitalize" ->
                    s.isEmpty()
                            ? s
                            : s.substring(0, 1).toUpperCase(Locale.ROOT)
                                    + s.substring(1).toLowerCase(Locale.ROOT);
            case "replace" ->
                    replace(
                            s,
                            str(args, 0),
                            str(args, 1),
                            args.length > 2 ? ((Number) args[2]).intValue() : -1);
            case "find" -> (long) s.indexOf(str(args, 0));
            case "rfind" -> (long) s.lastIndexOf(str(args, 0));
            case "count" -> count(s, str(args, 0));
            case "join" -> join(s, arg(args, 0));
            case "isdigit" -> !s.isEmpty() && s.codePoints().allMatch(Character::isDigit);
            case "isalpha" -> !s.isEmpty() && s.codePoints().allMatch(Character::isLetter);
            case "isalnum" -> !s.isEmpty() && s.codePoints().allMatch(Character::isLetterOrDigit);
            case "isspace" ->
                    !s.isEmpty() && s.codePoints().allMatch(PythonStringMethods::isPythonSpace);
            case "isupper" ->
                    s.codePoints().anyMatch(Character::isLetter)
                            && s.equals(s.toUpperCase(Locale.ROOT));
            case "islower" ->
                    s.codePoints().anyMatch(Character::isLetter)
                            && s.equals(s.toLowerCase(Locale.ROOT));
            case "removeprefix" ->
                    s.startsWith(str(args, 0)) ? s.substring(str(args, 0).length()) : s;
            case "removesuffix" -> {
                String suffix = str(args, 0);
                yield !suffix.isEmpty() && s.endsWith(suffix)
                        ? s.substring(0, s.length() - suffix.length())
                        : s;
            }
            default -> throw new IllegalStateException(name);
        };
    }

    private static Object arg(Object[] args, int i) {
        return i < args.length ? args[i] : null;
    }

    private static String str(Object[] args, int i) {
        Object a = arg(args, i);
        if (!(a instanceof String s)) {
            throw new IllegalArgumentException("expected a string argument, got " + a);
        }
        return s;
    }

    private static String chars(Object[] args) {
        return args.length > 0 && args[0] != null ? args[0].toString() : null;
    }

    private static int maxSplit(Object[] args) {
        return args.length > 1 && args[1] instanceof Number n ? n.intValue() : -1;
    }

    /** Python's str.startswith/endswith accept one affix or a tuple (here: list) of them. */
    private static boolean affixMatches(String s, Object affix, boolean prefix) {
        if (affix instanceof Collection<?> many) {
            for (Object a : many) {
                if (affixMatches(s, a, prefix)) {
                    return true;
                }
            }
            return false;
        }
        String a = String.valueOf(affix);
        return prefix ? s.startsWith(a) : s.endsWith(a);
    }

    /** Python's str.isspace characters: whitespace and the information separators. */
    static boolean isPythonSpace(int cp) {
        return Character.isWhitespace(cp) || Character.isSpaceChar(cp) || cp == 0x85;
    }

    private static boolean stripped(int cp, String chars) {
        return chars == null ? isPythonSpace(cp) : chars.indexOf(cp) >= 0;
    }

    private static String lstrip(String s, String chars) {
        int i = 0;
        while (i < s.length() && stripped(s.codePointAt(i), chars)) {
            i += Character.charCount(s.codePointAt(i));
        }
        return s.substring(i);
    }

    private static String rstrip(String s, String chars) {
        int end = s.length();
        while (end > 0 && stripped(s.codePointBefore(end), chars)) {
            end -= Character.charCount(s.codePointBefore(end));
        }
        return s.substring(0, end);
    }

    /** Python's str.split / rsplit: no separator splits on whitespace runs and drops empty parts. */
    private static List<String> split(String s, String sep, int maxSplit, boolean fromRight) {
        List<String> parts = new ArrayList<>();
        if (sep == null) {
            String rest = s;
            while (true) {
                rest = fromRight ? rstrip(rest, null) : lstrip(rest, null);
                if (rest.isEmpty()) {
                    break;
                }
                if (maxSplit >= 0 && parts.size() == maxSplit) {
                    parts.add(rest);
                    break;
                }
                int cut = fromRight ? lastSpace(rest) : firstSpace(rest);
                if (cut < 0) {
                    parts.add(rest);
                    break;
                }
                parts.add(fromRight ? rest.substring(cut + 1) : rest.substring(0, cut));
                rest = fromRight ? rest.substring(0, cut) : rest.substring(cut);
            }
        } else {
            if (sep.isEmpty()) {
                throw new IllegalArgumentException("empty separator");
            }
            String rest = s;
            while (maxSplit < 0 || parts.size() < maxSplit) {
                int at = fromRight ? rest.lastIndexOf(sep) : rest.indexOf(sep);
                if (at < 0) {
                    break;
                }
                parts.add(fromRight ? rest.substring(at + sep.length()) : rest.substring(0, at));
                rest = fromRight ? rest.substring(0, at) : rest.substring(at + sep.length());
            }
            parts.add(rest);
        }
        if (fromRight) {
            java.util.Collections.reverse(parts);
        }
        return parts;
    }

    private static int firstSpace(String s) {
        for (int i = 0; i < s.length(); i++) {
            if (isPythonSpace(s.charAt(i))) {
                return i;
            }
        }
        return -1;
    }

    private static int lastSpace(String s) {
        for (int i = s.length() - 1; i >= 0; i--) {
            if (isPythonSpace(s.charAt(i))) {
                return i;
            }
        }
        return -1;
    }

    private static String title(String s) {
        StringBuilder out = new StringBuilder(s.length());
        boolean previousCased = false;
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            out.appendCodePoint(
                    previousCased ? Character.toLowerCase(cp) : Character.toTitleCase(cp));
            previousCased = Character.isLetter(cp);
            i += Character.charCount(cp);
        }
        return out.toString();
    }

    private static String replace(String s, String old, String replacement, int count) {
        if (count < 0) {
            return s.replace(old, replacement);
        }
        StringBuilder out = new StringBuilder();
        int from = 0;
        for (int done = 0; done < count; done++) {
            int at = s.indexOf(old, from);
            if (at < 0) {
                break;
            }
            out.append(s, from, at).append(replacement);
            from = at + old.length();
            if (old.isEmpty()) {
                if (from >= s.length()) {
                    break;
                }
                out.append(s.charAt(from++));
            }
        }
        return out.append(s.substring(from)).toString();
    }

    private static long count(String s, String sub) {
        if (sub.isEmpty()) {
            return s.codePointCount(0, s.length()) + 1;
        }
        long n = 0;
        for (int at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length())) {
            n++;
        }
        return n;
    }

    private static String join(String separator, Object items) {
        if (!(items instanceof Iterable<?> iterable)) {
            throw new IllegalArgumentException("join needs a list, got " + items);
        }
        StringBuilder out = new StringBuilder();
        boolean first = true;
        for (Object item : iterable) {
            if (!first) {
                out.append(separator);
            }
            first = false;
            out.append(item);
        }
        return out.toString();
    }

    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {}

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return true;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return null;
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return null;
    }
}
