package io.jemma.speculative;

import java.util.List;

/**
 * Where a round's drafts come from: the assistant ({@link Drafter}); tests use sources that know the answer to
 * drive the verify, accept and rollback paths with drafts that are mostly right.
 */
@FunctionalInterface
public interface DraftSource {

    /** One draft per request, in the requests' order; each within the request's limits. */
    List<DraftTree> draft(List<Drafter.Request> requests);
}
