package io.jemma.tokenizer;

import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;

import java.lang.reflect.Method;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.TextStyle;
import java.util.Locale;

/** The global functions transformers gives chat templates: raise_exception and strftime_now. */
final class TemplateFunctions {

    private TemplateFunctions() {}

    /** Thrown by raise_exception; {@link ChatTemplate} turns it into a ChatTemplateException with the same message. */
    static final class TemplateRaised extends RuntimeException {
        TemplateRaised(String message) {
            super(message, null, false, false);
        }
    }

    static ELFunctionDefinition definition(
            String templateName, String methodName, Class<?>... parameters) {
        try {
            Method method = TemplateFunctions.class.getDeclaredMethod(methodName, parameters);
            method.setAccessible(
                    true); // this class is package-private; jinjava calls the method reflectively
            return new ELFunctionDefinition("", templateName, method);
        } catch (NoSuchMethodException e) {
            throw new IllegalStateException(e);
        }
    }

    static String raiseException(Object message) {
        throw new TemplateRaised(String.valueOf(message));
    }

    static String strftimeNow(String format) {
        return strftime(LocalDateTime.now(), format);
    }

    /** Python's strftime for the directives templates use for dates. */
    static String strftime(LocalDateTime time, String format) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                out.append(c);
                continue;
            }
            char d = format.charAt(++i);
            switch (d) {
                case 'd' -> out.append(String.format("%02d", time.getDayOfMonth()));
                case 'm' -> out.append(String.format("%02d", time.getMonthValue()));
                case 'Y' -> out.append(time.getYear());
                case 'y' -> out.append(String.format("%02d", time.getYear() % 100));
                case 'H' -> out.append(String.format("%02d", time.getHour()));
                case 'I' -> out.append(String.format("%02d", (time.getHour() + 11) % 12 + 1));
                case 'M' -> out.append(String.format("%02d", time.getMinute()));
                case 'S' -> out.append(String.format("%02d", time.getSecond()));
                case 'p' -> out.append(time.getHour() < 12 ? "AM" : "PM");
                case 'b' ->
                        out.append(time.getMonth().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'B' ->
                        out.append(time.getMonth().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'a' ->
                        out.append(
                                time.getDayOfWeek()
                                        .getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'A' ->
                        out.append(
                                time.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'j' -> out.append(String.format("%03d", time.getDayOfYear()));
                case 'F' -> out.append(time.format(DateTimeFormatter.ISO_LOCAL_DATE));
                case '%' -> out.append('%');
                default -> out.append('%').append(d);
            }
        }
        return out.toString();
    }
}
