package io.jemma.bench;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

class SseEventTest {

    private static final String CHAT = "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}";

    @Test
    void bothFramingsCarryTheSameEvent() {
        var spaced = SseEvent.parse("data: " + CHAT, Api.CHAT);
        var tight = SseEvent.parse("data:" + CHAT, Api.CHAT);
        assertEquals(new SseEvent.Chunk("Hi", null), spaced);
        assertEquals(spaced, tight);
        assertInstanceOf(SseEvent.Done.class, SseEvent.parse("data: [DONE]", Api.CHAT));
        assertInstanceOf(SseEvent.Done.class, SseEvent.parse("data:[DONE]\r", Api.CHAT));
    }

    @Test
    void linesWithoutDataAreSkipped() {
        assertNull(SseEvent.parse("", Api.CHAT));
        assertNull(SseEvent.parse(": keep-alive", Api.CHAT));
        assertNull(SseEvent.parse("event: message", Api.CHAT));
        assertNull(SseEvent.parse("data:", Api.CHAT));
    }

    @Test
    void roleFinishAndUsageChunksCarryNoText() {
        assertEquals("", ((SseEvent.Chunk) SseEvent.parse(
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}", Api.CHAT)).content());
        assertEquals("", ((SseEvent.Chunk) SseEvent.parse(
                "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}", Api.CHAT)).content());
        var usage = (SseEvent.Chunk) SseEvent.parse(
                "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":5,\"total_tokens\":17}}",
                Api.CHAT);
        assertEquals(new SseEvent.Chunk("", new SseEvent.Usage(12, 5)), usage);
    }

    @Test
    void completionsTextAndReasoningCount() {
        assertEquals("a", ((SseEvent.Chunk) SseEvent.parse("data: {\"choices\":[{\"text\":\"a\"}]}",
                Api.COMPLETIONS)).content());
        assertEquals("think", ((SseEvent.Chunk) SseEvent.parse(
                "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"think\",\"content\":null}}]}", Api.CHAT))
                .content());
    }

    @Test
    void errorEventsAndGarbage() {
        assertEquals(new SseEvent.Error("out of memory"), SseEvent.parse(
                "data: {\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\"}}", Api.CHAT));
        assertThrows(IllegalArgumentException.class, () -> SseEvent.parse("data: {not json", Api.CHAT));
    }
}
