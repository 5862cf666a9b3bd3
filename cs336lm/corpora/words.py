"""The words and sentence templates of the synthetic corpora (cs336lm.corpora.synthetic): data, not code. Word
lists are tuples, never sets: iteration order must not depend on string hashing."""

from __future__ import annotations

GIRL_NAMES = tuple(
    "Lily Mia Sue Anna Emma Lucy Ella Zoe Amy Sara Rose Kim Jenny Molly Daisy Ruby Nina Lola Maya Chloe "
    "Sophie Grace Ivy Hannah Tina Kate Lisa Jane Bella Alice Olivia Ava Isla Freya Poppy Elsie Evie Hazel Willow "
    "Violet Clara Nora Stella Luna Penny Holly Iris Fiona Greta Heidi Julia Lena Mabel Nell Olive Paula Quinn "
    "Rita Tessa Una Vera Wendy Yara Zara Abby Beth Cora Dora Edie Faye Gwen Hope Jade Kitty Lottie Megan Nancy "
    "Opal Pearl".split()
)

BOY_NAMES = tuple(
    "Tom Ben Sam Tim Jack Leo Finn Jake Noah Lucas Oliver Henry Billy Joe Alex Ryan Peter Danny Eli Owen "
    "Luke Mark Theo Adam Jimmy Bobby Kevin Oscar Hugo Milo Arthur Charlie Harry George Freddie Alfie Archie "
    "Jacob Louis Max Ethan Felix Isaac Jasper Kai Liam Mason Nathan Otis Patrick Reuben Simon Toby Victor Wesley "
    "Zack Aaron Brian Carl Dylan Eddie Frank Gus Harvey Ian Joel Kyle Lenny Morris Ned Ollie Percy Ralph Stanley "
    "Teddy Walter".split()
)

PRONOUNS = {  # kind -> the slots a story fills for its protagonist
    "girl": {"He": "She", "he": "she", "His": "Her", "his": "her", "him": "her", "reflexive": "herself"},
    "boy": {"He": "He", "he": "he", "His": "His", "his": "his", "him": "him", "reflexive": "himself"},
}

WORDS = {
    "adj": "little kind curious brave shy happy clever playful gentle cheerful small funny".split(),
    "trait": "kind curious brave shy clever playful gentle quiet silly careful".split(),
    "parent": "mom dad grandma grandpa aunt".split(),
    "pet": "dog cat bunny puppy kitten hamster parrot turtle".split(),
    # Pet and town names are built from parts: many distinct words from short lists, so BPE on the story text
    # finds as many merges as a demo vocabulary asks for.
    "pet_name": tuple("Spot Buddy Rex Fluffy Coco Pip Biscuit Whiskers Bubbles Patch Sunny Pepper".split())
    + tuple(a + b for a in "Bu Po Ti Mo Zu Pi Lu Ko Fi Ba Wi Ja".split()
            for b in "bble ppy nky mpy ggle ffy zzy tto ster lly".split()),
    "town": tuple(a + b for a in ("Mill Oak Maple Stone River Pine Green Fox Bear Honey Apple Willow Cherry Rose "
                                  "Sunny Berry Clover Cedar Brook Elm Fern Hazel Meadow Robin").split()
                  for b in "brook field wood ton ville dale ford haven hill bury port stead".split()),
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

OPENINGS = (
    "Once upon a time, there was a {adj} {kind} named {name}.",
    "Once upon a time, in a small town, there lived a {adj} {kind} called {name}.",
    "There once was a {adj} {kind} named {name} who lived near {place}.",
    "{name} was a {adj} {kind} who was {age} years old.",
    "Once there was a {kind} named {name}, and {he} was very {trait}.",
    "One day, a {adj} {kind} named {name} woke up early.",
    "Long ago, a {adj} {kind} named {name} lived in a little house with {his} {parent}.",
    "{name} was {age} years old and loved to play {game}.",
    "Once upon a time, in the town of {town}, there lived a {adj} {kind} named {name}.",
    "{name} was a {adj} {kind} who lived in {town}, a little town near {wild}.",
)

# The friend is always introduced during setup, so later dialogue with them has real context to predict.
FRIEND_SETUPS = (
    "{His} best friend was {friend}, who lived next door.",
    "{name} and {friend} liked to play {game} together.",
    "{name} had a good friend named {friend}. {FHe} was very {ftrait}.",
    "Every day, {name} walked to {place} with {his} friend {friend}.",
)

SETUPS = (
    "{He} had {a_obj} that {he} loved very much.",
    "{He} liked to play with {his} {pet}, {pet_name}, every day.",
    "Every morning, {name} ate {food} with {his} {parent}.",
    "{name} loved to go to {place} and look at the {nature}.",
    "{He} had {num} {items} in a big box under {his} bed.",
    "{name} was very {trait}, and {he} always wanted to learn new things.",
    "{His} {parent} often said, \"You are my little star, {name}.\"",
    "{He} liked to sing songs and dance in the sun.",
)

REACTIONS = (
    "{name} felt very {bad}.",
    "\"Oh no!\" said {name}. {He} felt {bad}.",
    "{name} was {bad}, and {he} started to cry.",
    "{name} did not know what to do.",
    "{He} sat down and frowned. \"This is not fair,\" {he} said.",
    "\"What should I do?\" {name} asked {his} {parent}.",
)

CHEERS = (
    "{name} was so {good}!",
    "{name} smiled a big smile. {He} felt {good}.",
    "\"Thank you, {friend}!\" said {name}.",
    "{name} jumped up and down and clapped {his} hands.",
    "Everyone laughed and cheered.",
    "{name} gave {his} {parent} a big hug.",
)

ENDINGS = (
    "And they all lived happily ever after.",
    "The end.",
    "{name} went to bed with a big smile on {his} face.",
    "That night, {name} dreamed about {dream}.",
    "From that day on, {name} and {friend} played together every day.",
    "Soon everyone in {town} knew the story of {name} and {friend}.",
)

# Story arcs: (problem, attempt, resolution, moral) sentence templates. A story is setup -> problem -> attempts ->
# resolution -> moral, so the arc chosen early decides which words come late: long-range context for a small LM.
ARCS = (
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

TOPICS = (  # (topic, organization, things it involves)
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

WEB = {
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

NEWS = (  # one paragraph is drawn from each group, in order
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

STEPS = (
    "Start small. Pick one area, such as {t}, and spend {n} minutes a day on it for the first week.",
    "Compare prices. {t} can cost anywhere from ${lo} to ${hi}, and the cheapest option is not always the worst.",
    "Make a plan. Write down what you want from {t} and check back every {n} days.",
    "Ask an expert. Local groups and sites like {domain} often answer questions for free.",
    "Track your results in a simple spreadsheet: date, cost, and notes on {t}.",
    "Don't overdo it. Most beginners give up on {t} within {n} weeks because they try to do everything at once.",
)

BLOG = (
    "I have been writing about {topic} for {n} years, and {year} was the strangest year yet.",
    "Here is the short version: {t0} turned out to be {verdict}. My verdict on {t1}? {Verdict2}.",
    "A reader named {first} emailed me last {month} to ask whether {t2} was worth the money. My honest answer: "
    "it depends on your budget, but for most people the answer is yes.",
    "Prices went up by roughly {pct}% compared with last year, so plan ahead.",
)
