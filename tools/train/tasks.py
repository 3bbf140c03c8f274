#!/usr/bin/env python3
"""Synthetic chat tasks with short, exactly checkable answers: the data of Jemma's embedded model.

Eight task families, each phrased through several English templates:

  add        sum of two numbers below 1000                    "What is 482 + 339?"          -> "821"
  sub        difference of two numbers below 1000, never < 0  "Subtract 57 from 930."       -> "873"
  count      how often a letter occurs in a made-up word      "How many a's are in bakora?" -> "2"
  sort       3-4 words (distinct first letters), A to Z       "Sort: pear, fig, lime"       -> "fig, lime, pear"
  reverse    3-5 words in reverse order                       "Reverse: red, blue, green"   -> "green, blue, red"
  convert    units by a factor (1000, 100, 10, 60)            "How many metres are in 7 km?" -> "7000"
  weekday    weekday N days after a given one (N 1-99)        "Today is Monday. ... in 10 days?" -> "Thursday"
  sequence   the integers from a to b (3-6 of them)           "Count from 98 to 101."       -> "98, 99, 100, 101"

Every item has a canonical key (task and operands, independent of the wording). The splits come from
fixed seeds: test (TEST_SEED) and validation (VAL_SEED) are drawn first; the training stream
(TRAIN_SEED) skips every key of either, so no test problem is ever trained on, in any phrasing.

    python3 tools/train/tasks.py --write-test src/test/resources/eval/test.jsonl   # the committed test split
    python3 tools/train/tasks.py --check                                          # self-checks
    python3 tools/train/tasks.py --show 20                                        # a few training items

Pure Python (no dependencies): the same items on any machine for the same seeds.
"""
import argparse
import json
import random
import sys

TEST_SEED = 1009
VAL_SEED = 2003
TRAIN_SEED = 3001
TEST_PER_TASK = 60
VAL_PER_TASK = 60

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# Common lowercase English words, 3-9 letters; every first letter a-y occurs, so sorted lists vary.
WORDS = """
apple apricot arrow autumn anchor almond basket banana bridge butter button breeze candle carpet castle
cherry circle copper cotton dragon desert dinner doctor donkey eagle engine empty evening elbow fabric
falcon feather finger forest garden garlic ginger glass guitar hammer harbor helmet honey hunter island
insect iron ivory jacket jelly jungle journey kettle kitten knife ladder lemon letter lizard lobster
magnet marble meadow mirror monkey napkin needle nephew number nutmeg ocean olive onion orange oyster
paper parrot pencil pepper pillow planet pocket puzzle quarter queen quiet quilt rabbit radio river
rocket ribbon saddle salmon silver spider summer sugar table tiger tomato tunnel turtle umbrella uncle
unicorn valley velvet violin vessel wagon walnut window winter wizard yellow yogurt zebra berry bottle
cabin cloud crown daisy drum ember fern flute goose grape horse house jewel judge kiwi koala lamp leaf
lime melon moon nest nickel note oak otter owl peach pear plum pond rain robin rose salt seed shell
snow star stone sun tent thorn tree vase vine wheat whale wolf wood yarn yard zinc fig pea ant bee cat
dog fox hen owl pig ram yak elk emu jar mug pan pot cup box map kite frog toad crab deer duck lion
mouse sheep goat bread cheese water coffee tea milk rice corn bean nut plant flower grass bird fish
""".split()
WORDS = sorted(set(WORDS))
LETTERS = "abcdefghijklmnopqrstuvwxyz"
CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"

# Unit conversions: (from unit, to unit, factor, largest n). Two units share 60 and three 1000, so a
# held-out (unit, n) pair is still a product the model has practised with the same factor.
UNITS = [
    ("kilometres", "metres", 1000, 99), ("kilograms", "grams", 1000, 99), ("litres", "millilitres", 1000, 99),
    ("metres", "centimetres", 100, 99), ("centimetres", "millimetres", 10, 99),
    ("hours", "minutes", 60, 99), ("minutes", "seconds", 60, 99),
]
UNIT_SHORT = {"kilometres": "km", "kilograms": "kg", "litres": "l", "metres": "m", "centimetres": "cm",
              "hours": "h", "minutes": "min"}
UNIT_ONE = {"kilometres": "kilometre", "kilograms": "kilogram", "litres": "litre", "metres": "metre",
            "centimetres": "centimetre", "hours": "hour", "minutes": "minute"}


def _add(r):
    a, b = _operand(r), _operand(r)
    t = r.choice([
        "What is {a} + {b}?", "What is {a} plus {b}?", "Add {a} and {b}.", "Compute {a} + {b}.",
        "Calculate the sum of {a} and {b}.", "{a} + {b} = ?", "What do you get when you add {a} to {b}?",
        "Please work out {a} + {b}.",
    ])
    return f"add:{a}:{b}", t.format(a=a, b=b), str(a + b)


def _sub(r):
    a, b = _operand(r), _operand(r)
    a, b = max(a, b), min(a, b)
    t = r.choice([
        "What is {a} - {b}?", "What is {a} minus {b}?", "Subtract {b} from {a}.", "Compute {a} - {b}.",
        "Calculate the difference {a} - {b}.", "{a} - {b} = ?", "What do you get when you take {b} away from {a}?",
        "Please work out {a} - {b}.",
    ])
    return f"sub:{a}:{b}", t.format(a=a, b=b), str(a - b)


def _operand(r):
    """Below 1000, with as many 1- and 2-digit numbers as 3-digit ones so short sums are not rare."""
    digits = r.choice([1, 2, 3, 3])
    return r.randrange(0 if digits == 1 else 10 ** (digits - 1), 10 ** digits)


def _made_up_word(r):
    """A pronounceable made-up word (2-3 syllables), e.g. 'bakomi': letters the model must read from the
    tokens themselves. (With real words a held-out (word, letter) question could not be learnt: nothing
    else in the data spells out a word that is a single token.)"""
    word = "".join(r.choice(CONSONANTS) + r.choice(VOWELS) for _ in range(r.choice([2, 3])))
    return word + r.choice(CONSONANTS) if r.random() < 0.4 else word


def _count(r):
    word = _made_up_word(r)
    letter = r.choice(word) if r.random() < 0.75 else r.choice(LETTERS)
    t = r.choice([
        "How many times does the letter '{l}' appear in '{w}'?", "How many {l}'s are in the word {w}?",
        "Count the letter {l} in the word {w}.", "In the word '{w}', how many times does '{l}' occur?",
        "How often does the letter {l} occur in {w}?", "Count how many times '{l}' appears in \"{w}\".",
    ])
    return f"count:{word}:{letter}", t.format(l=letter, w=word), str(word.count(letter))


def _sequence(r):
    start = r.randint(1, 300)
    end = start + r.randint(2, 5)
    t = r.choice([
        "Count from {a} to {b}.", "List the numbers from {a} to {b}.", "Write the whole numbers from {a} up to {b}.",
        "Count up from {a} to {b}, separated by commas.", "What are the integers from {a} to {b}?",
        "Please count from {a} to {b}.",
    ])
    return f"sequence:{start}:{end}", t.format(a=start, b=end), ", ".join(str(i) for i in range(start, end + 1))


def _sort(r):
    n = r.choice([3, 4])
    words = []
    while len(words) < n:
        w = r.choice(WORDS)
        if all(w[0] != x[0] for x in words):
            words.append(w)
    listed = ", ".join(words)
    t = r.choice([
        "Sort these words alphabetically: {x}.", "Put these words in alphabetical order: {x}.",
        "Arrange in alphabetical order: {x}", "Sort from A to Z: {x}.",
        "Alphabetize the following words: {x}.", "Please sort alphabetically: {x}",
    ])
    return f"sort:{listed}", t.format(x=listed), ", ".join(sorted(words))


def _reverse(r):
    n = r.choice([3, 4, 5])
    words = r.sample(WORDS, n)
    listed = ", ".join(words)
    t = r.choice([
        "Reverse the order of these words: {x}.", "Write these words in reverse order: {x}.",
        "List backwards: {x}", "Reverse this list: {x}.", "Give these words from last to first: {x}.",
        "Please reverse: {x}",
    ])
    return f"reverse:{listed}", t.format(x=listed), ", ".join(reversed(words))


def _convert(r):
    src, dst, factor, top = r.choice(UNITS)
    n = r.randint(1, top)
    unit = UNIT_ONE[src] if n == 1 else src
    t = r.choice([
        "How many {dst} are in {n} {src}?", "Convert {n} {src} to {dst}.", "{n} {short} is how many {dst}?",
        "What is {n} {src} in {dst}?", "Express {n} {src} in {dst}.", "How many {dst} make {n} {src}?",
    ])
    return (f"convert:{src}:{n}", t.format(dst=dst, n=n, src=unit, short=UNIT_SHORT[src]), str(n * factor))


def _weekday(r):
    start = r.randrange(7)
    n = r.randint(1, 99)
    days = "day" if n == 1 else "days"
    t = r.choice([
        "Today is {d}. What day of the week will it be in {n} {days}?",
        "If today is {d}, what day will it be {n} {days} from now?",
        "It is {d}. Which weekday comes {n} {days} later?",
        "What weekday is {n} {days} after {d}?",
        "Starting on a {d}, what day is it after {n} {days}?",
        "{d} plus {n} {days} is which day of the week?",
    ])
    return f"weekday:{start}:{n}", t.format(d=WEEKDAYS[start], n=n, days=days), WEEKDAYS[(start + n) % 7]


TASKS = {"add": _add, "sub": _sub, "count": _count, "sort": _sort, "reverse": _reverse, "convert": _convert,
         "weekday": _weekday, "sequence": _sequence}


def item(task, r):
    key, prompt, answer = TASKS[task](r)
    return {"task": task, "key": key, "messages": [{"role": "user", "content": prompt}], "answer": answer}


def split(seed, per_task, exclude=frozenset()):
    """per_task items of every task, distinct keys, none in exclude; tasks interleaved in a fixed order."""
    r = random.Random(seed)
    chosen = {t: [] for t in TASKS}
    seen = set(exclude)
    for task in TASKS:
        while len(chosen[task]) < per_task:
            it = item(task, r)
            if it["key"] not in seen:
                seen.add(it["key"])
                chosen[task].append(it)
    return [chosen[t][i] for i in range(per_task) for t in TASKS]


def test_split():
    return split(TEST_SEED, TEST_PER_TASK)


def validation_split():
    return split(VAL_SEED, VAL_PER_TASK, exclude={it["key"] for it in test_split()})


def held_out_keys():
    return {it["key"] for it in test_split()} | {it["key"] for it in validation_split()}


def training_stream(seed=TRAIN_SEED, weights=None):
    """Endless training items, tasks drawn by weight, never a held-out key (repeats of other keys are fine)."""
    r = random.Random(seed)
    held = held_out_keys()
    names = list(TASKS)
    w = [(weights or {}).get(t, 1.0) for t in names]
    while True:
        it = item(r.choices(names, w)[0], r)
        if it["key"] not in held:
            yield it


def training_items(n, seed=TRAIN_SEED, weights=None):
    stream = training_stream(seed, weights)
    return [next(stream) for _ in range(n)]


def write_jsonl(items, path, prefix):
    with open(path, "w", encoding="utf-8") as f:
        for i, it in enumerate(items):
            f.write(json.dumps(dict({"id": f"{prefix}-{i:04d}"}, **it), ensure_ascii=False) + "\n")


def check():
    """The properties the rest relies on; exits non-zero on the first failure."""
    test, val = test_split(), validation_split()
    assert test == test_split(), "test split is not deterministic"
    assert len(test) == TEST_PER_TASK * len(TASKS) and len(val) == VAL_PER_TASK * len(TASKS)
    test_keys, val_keys = {it["key"] for it in test}, {it["key"] for it in val}
    assert len(test_keys) == len(test) and len(val_keys) == len(val) and not test_keys & val_keys
    train = training_items(50_000)
    assert not {it["key"] for it in train} & (test_keys | val_keys), "a held-out key leaked into training"
    assert training_items(100) == train[:100], "training stream is not deterministic"
    for it in test + val + train[:5000]:
        a, p = it["answer"], it["messages"][0]["content"]
        assert a and a == a.strip() and "\n" not in a and p == p.strip(), it
        kind, *ops = it["key"].split(":")
        if kind in ("add", "sub"):
            x, y = int(ops[0]), int(ops[1])
            assert int(a) == (x + y if kind == "add" else x - y) >= 0, it
        elif kind == "weekday":
            assert a == WEEKDAYS[(int(ops[0]) + int(ops[1])) % 7], it
        elif kind == "sort":
            assert a.split(", ") == sorted(ops[0].split(", ")), it
        elif kind == "count":
            assert int(a) == ops[0].count(ops[1]), it
        elif kind == "sequence":
            assert a == ", ".join(str(i) for i in range(int(ops[0]), int(ops[1]) + 1)), it
    counts = {t: sum(1 for it in train if it["task"] == t) for t in TASKS}
    assert min(counts.values()) > 0.1 * len(train), counts
    print(f"ok: {len(test)} test, {len(val)} validation items, {len(WORDS)} words; 50000 training items, "
          f"{len({it['key'] for it in train})} distinct keys, none held out; per task {counts}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write-test", metavar="JSONL", help="write the test split")
    ap.add_argument("--write-validation", metavar="JSONL", help="write the validation split")
    ap.add_argument("--check", action="store_true", help="run the self-checks")
    ap.add_argument("--show", type=int, metavar="N", help="print N training items")
    args = ap.parse_args()
    if args.write_test:
        write_jsonl(test_split(), args.write_test, "test")
    if args.write_validation:
        write_jsonl(validation_split(), args.write_validation, "val")
    if args.check:
        check()
    if args.show:
        for it in training_items(args.show):
            print(json.dumps(it, ensure_ascii=False))
    if not (args.write_test or args.write_validation or args.check or args.show):
        ap.print_help()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
