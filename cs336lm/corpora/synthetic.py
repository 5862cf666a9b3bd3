"""Synthetic corpora in TinyStories V2's file format, for machines that cannot download the real data sets.

`write_stories` streams seeded template-grammar documents, each followed by "\\n<|endoftext|>\\n" as in
TinyStoriesV2-GPT4-train.txt: children's stories (`style="tinystories"`) stand in for TinyStories and short
news/how-to/blog posts (`style="web"`) for OpenWebText, so the embedded demo has two registers to contrast.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from cs336lm.atomic import atomic_path

log = logging.getLogger(__name__)

STYLES = ("tinystories", "web")
_FLUSH_BYTES = 1 << 20  # write in ~1 MiB blocks: bounded memory for any size, few syscalls

# Word lists are tuples, never sets: iteration order must not depend on string hashing.
GIRL_NAMES = tuple(
    "Lily Mia Sue Anna Emma Lucy Ella Zoe Amy Sara Rose Kim Jenny Molly Daisy Ruby Nina Lola Maya Chloe "
    "Sophie Grace Ivy Hannah Tina Kate Lisa Jane Bella Alice".split()
)
BOY_NAMES = tuple(
    "Tom Ben Sam Tim Jack Leo Finn Jake Noah Lucas Oliver Henry Billy Joe Alex Ryan Peter Danny Eli Owen "
    "Luke Mark Theo Adam Jimmy Bobby Kevin Oscar Hugo Milo".split()
)
_PRONOUNS = {  # kind -> the slots a story fills for its protagonist
    "girl": {"He": "She", "he": "she", "His": "Her", "his": "her", "him": "her", "reflexive": "herself"},
    "boy": {"He": "He", "he": "he", "His": "His", "his": "his", "him": "him", "reflexive": "himself"},
}
_W = {
    "adj": "little kind curious brave shy happy clever playful gentle cheerful small funny".split(),
    "trait": "kind curious brave shy clever playful gentle quiet silly careful".split(),
    "parent": "mom dad grandma grandpa aunt".split(),
    "pet": "dog cat bunny puppy kitten hamster parrot turtle".split(),
    "pet_name": "Spot Buddy Rex Fluffy Coco Pip Biscuit Whiskers Bubbles Patch Sunny Pepper".split(),
    "color": "red blue green yellow pink purple shiny soft striped golden".split(),
    "obj": "ball teddy bear kite doll truck hat book drum car boat crayon robot balloon".split(),
    "place": ("the park", "the beach", "the garden", "the market", "the zoo", "school", "the farm", "the lake",
              "the playground", "the library"),
    "wild": ("the forest", "the big hill", "the old cave", "the deep woods", "the tall grass", "the meadow"),
    "food": "apples cookies cherries grapes pancakes carrots muffins berries sandwiches cupcakes".split(),
    "items": "blocks crayons marbles stickers books cars dolls shells rocks buttons".split(),
    "nature": "flowers trees birds clouds butterflies stars ducks fish bees leaves".split(),
    "game": ("tag", "hide and seek", "catch", "ball", "pretend", "with blocks", "dress up"),
    "bad": "sad worried upset scared angry confused lonely grumpy".split(),
    "good": "happy proud glad excited thankful joyful calm".split(),
    "fear": ("the dark", "the loud thunder", "the big dog next door", "the deep water", "the tall slide",
             "the strange noise in the attic", "the first day of school"),
    "critter": "bird kitten puppy duckling squirrel frog bunny owl".split(),
    "trap": "bush fence hole net puddle".split(),
    "hideout": "leaf rock chair bush blanket box tree".split(),
    "project": ("sandcastle", "tower of blocks", "kite", "paper boat", "birdhouse", "cake", "snowman", "card"),
    "skill": ("ride a bike", "swim", "jump rope", "climb the big tree", "fly a kite", "whistle", "read a long book",
              "bake cookies"),
    "landmark": "tree rock bridge fence pond".split(),
    "helper": "owl turtle rabbit fox deer".split(),
    "num": "two three four five six seven eight nine ten".split(),
    "ordinal": "third fourth fifth sixth".split(),
    "time": ("One day,", "One sunny morning,", "The next day,", "On a windy afternoon,", "One evening,",
             "After lunch,", "On Saturday,", "Later that day,", "One cold morning,"),
    "dream": ("flying over the clouds", "a big castle made of candy", "dancing with the stars",
              "a rainbow that went all the way to the sea"),
}

_OPENINGS = (
    "Once upon a time, there was a {adj} {kind} named {name}.",
    "Once upon a time, in a small town, there lived a {adj} {kind} called {name}.",
    "There once was a {adj} {kind} named {name} who lived near {place}.",
    "{name} was a {adj} {kind} who was {age} years old.",
    "Once there was a {kind} named {name}, and {he} was very {trait}.",
    "One day, a {adj} {kind} named {name} woke up early.",
    "Long ago, a {adj} {kind} named {name} lived in a little house with {his} {parent}.",
    "{name} was {age} years old and loved to play {game}.",
)
# The friend is always introduced during setup, so later dialogue with them has real context to predict.
_FRIEND_SETUPS = (
    "{His} best friend was {friend}, who lived next door.",
    "{name} and {friend} liked to play {game} together.",
    "{name} had a good friend named {friend}. {FHe} was very {ftrait}.",
    "Every day, {name} walked to {place} with {his} friend {friend}.",
)
_SETUPS = (
    "{He} had {a_obj} that {he} loved very much.",
    "{He} liked to play with {his} {pet}, {pet_name}, every day.",
    "Every morning, {name} ate {food} with {his} {parent}.",
    "{name} loved to go to {place} and look at the {nature}.",
    "{He} had {num} {items} in a big box under {his} bed.",
    "{name} was very {trait}, and {he} always wanted to learn new things.",
    "{His} {parent} often said, \"You are my little star, {name}.\"",
    "{He} liked to sing songs and dance in the sun.",
)
_REACTIONS = (
    "{name} felt very {bad}.",
    "\"Oh no!\" said {name}. {He} felt {bad}.",
    "{name} was {bad}, and {he} started to cry.",
    "{name} did not know what to do.",
    "{He} sat down and frowned. \"This is not fair,\" {he} said.",
    "\"What should I do?\" {name} asked {his} {parent}.",
)
_CHEERS = (
    "{name} was so {good}!",
    "{name} smiled a big smile. {He} felt {good}.",
    "\"Thank you, {friend}!\" said {name}.",
    "{name} jumped up and down and clapped {his} hands.",
    "Everyone laughed and cheered.",
    "{name} gave {his} {parent} a big hug.",
)
_ENDINGS = (
    "And they all lived happily ever after.",
    "The end.",
    "{name} went to bed with a big smile on {his} face.",
    "That night, {name} dreamed about {dream}.",
    "From that day on, {name} and {friend} played together every day.",
)
# Story arcs: (problem, attempt, resolution, moral) sentence templates. A story is setup -> problem -> attempts ->
# resolution -> moral, so the arc chosen early decides which words come late: long-range context for a small LM.
_ARCS = (
    (  # a lost toy
        ("{time} {name} could not find {his} {obj}.",
         "{time} {name} looked in {his} toy box, but the {obj} was gone!",
         "{time} {name} took {his} {obj} to {place}, and when it was time to go home, the {obj} was not there."),
        ("{He} looked under the bed, behind the door and in the garden.",
         "{name} asked {friend} to help {him} look.",
         "{He} and {friend} searched {place} for a long time.",
         "{name} checked every room in the house, one by one.",
         "{He} asked {his} {parent}, \"Have you seen my {obj}?\""),
        ("At last, {friend} found the {obj} under a big {hideout}.",
         "Then {pet_name} the {pet} ran up with the {obj} in its mouth!",
         "Finally, {name} saw something {color} near the {hideout}. It was {his} {obj}!"),
        ("{name} learned to always put {his} things away.",
         "{name} learned that friends can help you find what you lost."),
    ),
    (  # a fear
        ("{time} {name} felt scared of {fear}.",
         "{time} {name} had to face {fear}, and {his} knees began to shake.",
         "{time} {name} wanted to play, but {he} was afraid of {fear}."),
        ("{His} {parent} held {his} hand and said, \"It is okay to be scared sometimes.\"",
         "{name} took a deep breath and counted to {num}.",
         "{friend} said, \"I will stay with you, {name}.\"",
         "{He} hugged {pet_name} the {pet} and felt a little better."),
        ("Slowly, {name} was not scared anymore.",
         "Soon {name} saw that {fear} was not so bad after all.",
         "{name} stood up tall. {He} felt brave and strong."),
        ("{name} learned that being brave means trying even when you are scared.",
         "From then on, {name} was never afraid of {fear} again."),
    ),
    (  # sharing
        ("{time} {friend} wanted to play with {name}'s {obj}.",
         "{time} {friend} asked, \"Can I play with your {obj}?\" But {name} said, \"No, it is mine!\"",
         "{time} {name} did not want to share {his} {obj} with {friend}."),
        ("{friend} was sad and walked away.",
         "{name} played alone, but it was not fun.",
         "{His} {parent} said, \"Sharing makes everyone happy, {name}.\"",
         "{name} thought about it for a long time."),
        ("{name} gave the {obj} to {friend} and said, \"Let's play together!\"",
         "{name} said sorry to {friend}, and they took turns with the {obj}."),
        ("{name} learned that sharing is caring.",
         "{name} and {friend} were best friends again, and they shared everything."),
    ),
    (  # a hurt animal
        ("{time} {name} found a little {critter} in {place}. It had a hurt leg.",
         "{time} {name} heard a sad sound. It was a small {critter}, and it could not move.",
         "{time} {name} saw a {critter} stuck in a {trap}."),
        ("{He} picked up the {critter} very gently.",
         "{name} ran home to get {his} {parent}.",
         "{name} gave the {critter} some water and a few {food}.",
         "{friend} brought a soft blanket to keep the {critter} warm."),
        ("After {num} days, the {critter} was strong again and went back to its home.",
         "Soon the {critter} felt better and went back to its family."),
        ("{name} learned that it is good to be kind to animals.",
         "{name} felt proud because {he} had helped someone in need."),
    ),
    (  # building something
        ("{time} {name} wanted to make a big {project}. But it fell down!",
         "{time} {name} worked hard to make a {project}, but it fell apart.",
         "{time} {name} tried to make a {project}, but it was too hard.",
         "{time} {name} made a {project}. Then {friend} bumped into it, and it broke!"),
        ("{name} wanted to give up, but {he} did not.",
         "{He} tried again, and again, and again.",
         "{friend} said, \"Let's try together. Two hands are better than one!\"",
         "{His} {parent} showed {him} how to do it slowly and carefully."),
        ("On the {ordinal} try, the {project} was perfect!",
         "At last, {name} and {friend} made the best {project} in the whole world."),
        ("{name} learned that if you keep trying, you can do it.",
         "{name} learned that working together makes things easier."),
    ),
    (  # learning a skill
        ("{time} {name} wanted to learn how to {skill}.",
         "{time} {name} saw {friend} {skill}, and {he} wanted to do it too.",
         "{time} {name} tried to {skill}, but {he} could not do it."),
        ("{He} practiced every day for {num} days.",
         "{friend} showed {him} what to do.",
         "Sometimes {name} fell, but {he} always got up again."),
        ("One morning, {name} could {skill} all by {reflexive}!",
         "Finally, {name} did it! {He} could {skill}!"),
        ("{name} learned that practice makes things easier.",
         "{name} was proud, and {he} knew {he} could learn anything."),
    ),
    (  # getting lost
        ("{time} {name} and {friend} went to explore {wild}. After a while, they could not find the way home.",
         "{time} {name} followed a {color} butterfly into {wild}, and soon {he} was lost.",
         "{time} {name} walked too far into {wild}, and the sky began to get dark."),
        ("{name} remembered what {his} {parent} said: \"If you get lost, stay calm.\"",
         "{He} looked for the big {landmark} {he} had seen before.",
         "{name} called out, \"Hello! Can anyone hear me?\"",
         "A wise old {helper} said, \"Follow the path by the river.\""),
        ("Soon {name} saw {his} house, and {his} {parent} was waiting at the door.",
         "They followed the path, and after {num} minutes they were home."),
        ("{name} learned to always stay close to home.",
         "It was a great adventure, but {name} was happy to be home."),
    ),
    (  # a rainy day
        ("{time} it rained all day, and {name} could not go outside.",
         "{time} {name} wanted to go to {place}, but it was raining hard."),
        ("{He} looked out the window and felt bored.",
         "Then {name} had an idea. {He} could make a fort with blankets!",
         "{name} and {his} {parent} baked {food} together.",
         "{friend} came over, and they played {game} inside."),
        ("They had so much fun that they forgot about the rain.",
         "When the rain stopped, they saw a big rainbow in the sky."),
        ("{name} learned that you can have fun on any day.",
         "{name} learned that a rainy day can be a happy day too."),
    ),
)


def _two(rng: random.Random, templates: tuple[str, ...]) -> tuple[str, str]:
    """Two distinct templates (rng.sample's algorithm is stable too, but this is cheaper and obviously so)."""
    i = rng.randrange(len(templates))
    j = (i + 1 + rng.randrange(len(templates) - 1)) % len(templates)
    return templates[i], templates[j]


class _Slots(dict):
    """Template slots drawn from _W on first use, so a story pays only for the words its templates mention."""

    def __init__(self, rng: random.Random, **fixed: object) -> None:
        super().__init__(fixed)
        self.rng = rng

    def __missing__(self, key: str) -> str:
        self[key] = value = self.rng.choice(_W[key])
        return value


def _story(rng: random.Random) -> str:
    kind = "girl" if rng.random() < 0.5 else "boy"
    name = rng.choice(GIRL_NAMES if kind == "girl" else BOY_NAMES)
    fkind = "girl" if rng.random() < 0.5 else "boy"
    friend = rng.choice(GIRL_NAMES if fkind == "girl" else BOY_NAMES)
    while friend == name:
        friend = rng.choice(GIRL_NAMES if fkind == "girl" else BOY_NAMES)
    slots = _Slots(rng, **_PRONOUNS[kind], kind=kind, name=name, friend=friend, FHe=_PRONOUNS[fkind]["He"],
                   age=rng.randrange(3, 10), ftrait=rng.choice(_W["trait"]))
    color, obj = rng.choice(_W["color"]), rng.choice(_W["obj"])
    slots.update(color=color, obj=obj, a_obj=("an " if color[0] in "aeiou" else "a ") + color + " " + obj)
    problem, attempts, resolutions, morals = rng.choice(_ARCS)
    first, second = _two(rng, attempts)
    paragraphs = (
        (rng.choice(_OPENINGS), rng.choice(_FRIEND_SETUPS), rng.choice(_SETUPS)),
        (rng.choice(problem), rng.choice(_REACTIONS), first, second),
        (rng.choice(resolutions), rng.choice(_CHEERS), rng.choice(morals))
        + ((rng.choice(_ENDINGS),) if rng.random() < 0.5 else ()),
    )
    # TinyStories mixes one-paragraph stories with ones broken by blank lines; so do we.
    sep = "\n\n" if rng.random() < 0.4 else " "
    return sep.join(" ".join(p.format_map(slots) for p in para) for para in paragraphs)


_TOPICS = (  # (topic, organization, things it involves)
    ("city budget", "the city council", ("road repairs", "public parks", "school buses", "street lights")),
    ("solar power", "the state energy agency", ("rooftop panels", "home batteries", "smart meters", "heat pumps")),
    ("home gardening", "the local garden club", ("tomatoes", "basil", "compost", "raised beds")),
    ("personal finance", "the consumer protection bureau",
     ("savings accounts", "credit cards", "index funds", "emergency funds")),
    ("remote work", "a workplace research firm", ("video calls", "shared calendars", "home offices", "team chat")),
    ("electric cars", "the transportation department",
     ("charging stations", "battery range", "tax credits", "used models")),
    ("marathon training", "the regional athletics federation",
     ("running shoes", "interval workouts", "rest days", "hydration")),
    ("smartphone security", "an independent security lab",
     ("software updates", "password managers", "two-factor codes", "app permissions")),
    ("public libraries", "the county library board", ("e-books", "reading rooms", "tutoring programs", "late fees")),
    ("specialty coffee", "an industry trade association",
     ("espresso machines", "roast levels", "grinders", "cold brew")),
    ("housing prices", "the regional housing authority",
     ("rents", "mortgage rates", "new apartments", "zoning rules")),
    ("machine learning", "the state university", ("training data", "GPUs", "open-source models", "benchmarks")),
)
_WEB = {
    "city": ("Springfield", "Riverton", "Lakeview", "Fairmont", "Maple Grove", "Oakdale", "Portsmouth", "Greenville",
             "Brookfield", "Westport", "Cedar Falls", "Hillsboro"),
    "first": "Maria David Sarah James Priya Michael Elena Robert Aisha Daniel Laura Kevin Tomas Yuki".split(),
    "last": "Johnson Garcia Patel Nguyen Smith Chen Okafor Miller Rossi Kim Brown Schmidt Alvarez Novak".split(),
    "role": ("spokesperson", "director", "senior analyst", "professor", "program manager", "co-founder",
             "researcher", "chief economist"),
    "month": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December"),
    "weekday": "Monday Tuesday Wednesday Thursday Friday".split(),
    "domain": ("example-news.com", "dailyledger.org", "techwire.net", "homeandgarden.io", "citybeat.com",
               "the-reporter.net", "howtohub.org"),
    "verdict": ("worth it", "overrated", "a mixed bag", "surprisingly affordable", "harder than it looks"),
}
_NEWS = (  # one paragraph is drawn from each group, in order
    ("{City} officials said on {weekday} that spending on {t0} will rise by {pct}% next year, bringing the total to "
     "${amount} million.",
     "{City} will spend ${amount} million on {t0} over the next {n} years, officials announced on {weekday}.",
     "A new survey of {big} residents in {City} found that {pct2}% want more money spent on {t0}."),
    ("\"We have heard from thousands of residents about {t1},\" said {person}, a {role} at {org}. "
     "\"This is a first step, not the last one.\"",
     "\"Nobody expected {t1} to matter this much,\" {person}, a {role} at {org}, told reporters.",
     "{person}, a {role} at {org}, called the numbers on {t1} \"encouraging but fragile.\""),
    ("According to a {year} report by {org}, about {pct2}% of households in the region now rely on {t2}, up from "
     "{pct3}% five years ago.",
     "Costs for {t2} have climbed {pct3}% a year since {year}, data from {org} show.",
     "Demand for {t2} doubled between {year} and {year2}, according to {org}."),
    ("Critics argue the plan does not go far enough. A public hearing is scheduled for {month} {day2} at "
     "{hour}:30 p.m. in the main hall.",
     "Opponents say the money would be better spent elsewhere; a vote is expected on {month} {day2}.",
     "Not everyone agrees. \"We tried this in {year} and it failed,\" said one local business owner."),
    ("The proposal also sets aside ${small},000 for a pilot program on {t3}, which could start as early as {month}.",
     "A separate program for {t3} will be reviewed in {month}, with a budget of about ${small},000."),
    ("Full details are available at https://www.{domain}/{year}/{mm}/{slug}.",
     "Read the full report at https://{domain}/reports/{slug}-{year}.pdf.",
     "This story was updated on {month} {day2}, {year2} with comment from {org}."),
)
_STEPS = (
    "Start small. Pick one area, such as {t}, and spend {n} minutes a day on it for the first week.",
    "Compare prices. {t} can cost anywhere from ${lo} to ${hi}, and the cheapest option is not always the worst.",
    "Make a plan. Write down what you want from {t} and check back every {n} days.",
    "Ask an expert. Local groups and sites like {domain} often answer questions for free.",
    "Track your results in a simple spreadsheet: date, cost, and notes on {t}.",
    "Don't overdo it. Most beginners give up on {t} within {n} weeks because they try to do everything at once.",
)
_BLOG = (
    "I have been writing about {topic} for {n} years, and {year} was the strangest year yet.",
    "Here is the short version: {t0} turned out to be {verdict}. My verdict on {t1}? {Verdict2}.",
    "A reader named {first} emailed me last {month} to ask whether {t2} was worth the money. My honest answer: "
    "it depends on your budget, but for most people the answer is yes.",
    "Prices went up by roughly {pct}% compared with last year, so plan ahead.",
)


def _web_post(rng: random.Random) -> str:
    topic, org, things = rng.choice(_TOPICS)
    t = list(things)
    rng.shuffle(t)  # shuffle's algorithm is stable across Python versions for a seeded Random
    s = {key: rng.choice(words) for key, words in _WEB.items()}
    year = rng.randrange(2008, 2020)
    s.update(topic=topic, org=org, t0=t[0], t1=t[1], t2=t[2], t3=t[3], City=s["city"], year=year,
             person=f"{s['first']} {rng.choice(_WEB['last'])}", pct=rng.randrange(2, 40), pct2=rng.randrange(10, 60),
             pct3=rng.randrange(3, 10), amount=f"{rng.randrange(1, 900)}.{rng.randrange(10)}",
             small=rng.randrange(50, 999), day=rng.randrange(1, 29), day2=rng.randrange(1, 29),
             hour=rng.randrange(5, 8), mm=f"{rng.randrange(1, 13):02d}", slug=topic.replace(" ", "-"),
             n=rng.randrange(2, 15), lo=rng.randrange(10, 100), hi=rng.randrange(100, 2000),
             Verdict2=rng.choice(_WEB["verdict"]).capitalize(), Topic=topic.title(),
             year2=year + rng.randrange(1, 5), big=f"{rng.randrange(1, 9)},{rng.randrange(1000):03d}")
    kind = rng.randrange(3)
    if kind == 0:
        title = rng.choice(("{City} Approves New Plan for {Topic}", "Report: {Topic} Costs Up {pct}% Since {year}",
                            "What the New {Topic} Rules Mean for {City} Residents"))
        body = [f"{s['city'].upper()}, {s['month']} {s['day']}, {year} -- " + rng.choice(_NEWS[0])]
        body += [rng.choice(group) for group in _NEWS[1:] if rng.random() < 0.8]
    elif kind == 1:
        title = rng.choice(("How to Get Started with {Topic}: {n} Simple Steps", "A Beginner's Guide to {Topic}",
                            "{Topic} 101: What I Wish I Knew"))
        steps = [rng.choice(_STEPS).replace("{t}", t[i % 4]) for i in range(rng.randrange(3, 7))]
        body = ["If you have ever wondered where to begin with {topic}, you are not alone. This guide takes about "
                "{n} minutes to read.",
                "\n".join(f"{i}. {step}" for i, step in enumerate(steps, 1)),
                "Updated {month} {day}, {year}. Have a question? Email us at help@{domain}."]
    else:
        title = rng.choice(("{n} Things I Learned About {Topic} in {year}", "Is {Topic} Worth It? An Honest Review"))
        body = list(_BLOG[:2]) + [
            "\n".join(f"- {x}: {rng.choice(_WEB['verdict'])}" for x in t),
            rng.choice(_BLOG[2:]),
            "What do you think? Let us know in the comments or at https://{domain}/{slug}.",
        ]
    return "\n\n".join([title.format_map(s)] + [p.format_map(s) for p in body])


_GENERATORS: dict[str, Callable[[random.Random], str]] = {"tinystories": _story, "web": _web_post}


def iter_documents(seed: int, style: str = "tinystories") -> Iterator[str]:
    """Endless seeded documents of one style (checked now, not at the first next()); same seed, same sequence."""
    if style not in _GENERATORS:
        raise ValueError(f"unknown synthetic style {style!r}; choose one of {', '.join(STYLES)}")
    return map(_GENERATORS[style], itertools.repeat(random.Random(seed)))


def write_stories(out_path: str | os.PathLike, num_bytes: int, seed: int, special_token: str = "<|endoftext|>",
                  style: str = "tinystories") -> None:
    """Write whole documents, each followed by "\\n{special_token}\\n", until at least num_bytes UTF-8 bytes.

    The output is a prefix-stable function of (seed, style): a bigger num_bytes only appends documents.
    Written to a temporary file beside out_path and renamed into place, so a killed job leaves no half file.
    """
    if isinstance(num_bytes, bool) or not isinstance(num_bytes, int) or num_bytes <= 0:
        raise ValueError(f"num_bytes must be a positive int, got {num_bytes!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if not special_token:
        raise ValueError("special_token must be a non-empty string")
    docs = iter_documents(seed, style)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    suffix = f"\n{special_token}\n"
    start = time.monotonic()
    with atomic_path(out_path) as tmp, open(tmp, "wb") as f:
        written, count, block, block_bytes = 0, 0, [], 0
        while written < num_bytes:
            data = (next(docs) + suffix).encode()
            count += 1
            block.append(data)
            block_bytes += len(data)
            written += len(data)
            if block_bytes >= _FLUSH_BYTES:
                f.write(b"".join(block))
                block, block_bytes = [], 0
        f.write(b"".join(block))
    seconds = time.monotonic() - start
    log.info("wrote %d %s documents, %d bytes, to %s in %.1f s (%.1f MB/s)", count, style, written, out_path,
             seconds, written / 1e6 / max(seconds, 1e-9))
