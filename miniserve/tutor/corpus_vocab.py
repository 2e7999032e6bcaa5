"""Word lists the corpus draws from: names, places, nouns, complements per verb, time markers, and
out-of-domain material. Data only; which split each entry belongs to is decided in corpus.py."""

from __future__ import annotations

from miniserve.tutor.lexicon import VERBS

NAMES = """Anna Tom Maria Łukasz José Zoë Björn Chloé Mia Ahmed Priya Kenji Oluwaseun Siobhán Jürgen Noé Sofia Liam
Olivia Noah Emma Lucas Aisha Mateo Yuki Wei Fatima Omar Ingrid Søren Agnieszka Małgorzata Zofia Kasia Tomek Piotr Ewa
Hélène François Ramón Íñigo Çağla Gökhan Dmitri Olga Ana João Thiago Camila Lars Freya Astrid Ines René Amélie Mehmet
Leyla Arjun Ravi Mei Hiro Kofi Amara Zanele Ngozi Tariq Layla Elif Bogdan Ștefan Jan Eva Pedro Lucía Sven Maja Nils
Karim Sam Ben Lily Jack Grace Daniel Sarah David Kate Paweł Jiří Håkon Zeynep Nuñez Dóra Ólafur Mónica""".split()

PLACES = [p.replace("_", " ") for p in """Wrocław Kraków Zürich Málaga São_Paulo Göteborg Łódź Reykjavík Besançon Aarhus
Köln Gdańsk Plzeň Montréal Bogotá Paris London Berlin Madrid Lisbon Rome Dublin Oslo Tokyo Kyoto Seoul Cairo Lagos
Nairobi Lima Quito Toronto Chicago Boston Sydney Mumbai Istanbul Athens Prague Vienna Budapest Warsaw Poznań Tromsø
Malmö Genève Córdoba Mérida Düsseldorf Brno Cluj Timișoara Izmir Hanoi Accra New_York San_Diego Las_Palmas Cape_Town
Kraljevo Šiauliai Tartu Ålesund Nîmes Cádiz Łeba Bydgoszcz""".split()]

NOUNS_SG = """sister brother mother father teacher neighbour friend boss cousin uncle aunt dog cat baby doctor student
coach grandmother grandfather son daughter wife husband roommate classmate nurse manager grandson niece nephew
girlfriend boyfriend landlord colleague pilot dentist baker boy girl granddaughter""".split()
NOUNS_PL = """kids parents neighbours students friends teachers cousins twins girls boys children grandparents
colleagues nurses doctors sisters brothers tourists dogs classmates uncles aunts roommates pilots""".split()
DETS = ("my", "your", "his", "her", "our", "their", "the")
ADJS = ("little", "old", "new", "best", "older", "younger", "big")

SUBJECT_PRONOUNS = ("I", "you", "he", "she", "it", "we", "they")
OBJECT_PRONOUNS = ("me", "you", "him", "her", "it", "us", "them")
# Strings both splits share on purpose (grammar words, not learnable content); excluded from disjointness.
SHARED = frozenset(SUBJECT_PRONOUNS) | frozenset(OBJECT_PRONOUNS) | {""}

# Verbs that make sense with "it" (an animal or a thing) as the subject.
IT_VERBS = ("eat", "play", "like", "live", "see", "walk", "have", "watch", "take")

# Complements per verb. "{place}", "{name}", "{np}" are filled from the split's own atoms; "" = no complement.
COMPLEMENTS: dict[str, list[str]] = {
    "work": ["at the hospital", "in a bank", "from home", "on the farm", "at night", "in the garden", "late",
             "hard", "at a café", "for a big company", "in {place}", "with {np}", "for {name}", ""],
    "play": ["football", "the piano", "chess", "video games", "in the park", "with the ball", "tennis", "cards",
             "the guitar", "basketball", "with {name}", "with {np}", "outside", ""],
    "watch": ["TV", "a movie", "the news", "the birds", "a football match", "cartoons", "the sunset",
              "a documentary", "the rain", "{np}", "a film with {name}", "the stars"],
    "walk": ["to school", "to the office", "home", "the dog", "in the park", "along the river", "to the station",
             "to the shop", "around the lake", "to {place}", "with {np}", "home with {name}", ""],
    "study": ["English", "math", "history", "for the exam", "at the library", "biology", "chemistry", "French",
              "music", "in {place}", "with {name}", "law", ""],
    "like": ["pizza", "music", "cats", "chocolate", "rainy days", "green tea", "jazz", "this song", "{name}",
             "{np}", "{place}", "spicy food", "old films"],
    "cook": ["dinner", "pasta", "rice", "soup", "breakfast", "for the family", "a big meal", "eggs", "fish",
             "for {name}", "for {np}", "curry", ""],
    "clean": ["the kitchen", "the house", "my room", "the car", "the windows", "the table", "the bathroom",
              "the floor", "the garage", "the bikes", "{name}'s room", "the fridge"],
    "visit": ["the museum", "the zoo", "{place}", "{np}", "{name}", "our friends", "the old castle",
              "the market", "the gallery", "the farm", "a church"],
    "finish": ["the report", "my homework", "the book", "the project", "the race", "early", "the puzzle",
               "the painting", "the course", "{name}'s letter", "the test", "the soup"],
    "call": ["the office", "{name}", "{np}", "a taxi", "the school", "the police", "the hotel", "the bank",
             "the shop", "an ambulance", "home"],
    "live": ["in {place}", "in a small flat", "near the sea", "with {np}", "in the city", "on a farm",
             "next to the park", "alone", "in a big house", "by the river", "near {name}", "in the north"],
    "go": ["to school", "to the market", "home", "to bed", "to {place}", "to the beach", "to the cinema",
           "shopping", "to the gym", "to the library", "to the park", "with {np}", "to {name}'s house"],
    "eat": ["an apple", "dinner", "breakfast", "a sandwich", "soup", "pizza", "too much", "lunch at noon",
            "rice", "some cake", "the cookies", "with {np}", "at {name}'s house", ""],
    "see": ["a bird", "a film", "{name}", "the sea", "a rainbow", "the new bridge", "{np}", "the stars",
            "a ghost", "{place}", "the mountains", "a fox"],
    "write": ["a letter", "an email", "a story", "a poem", "to {name}", "a report", "in my diary", "the answers",
              "a song", "a postcard", "to {np}", "a blog post"],
    "take": ["the bus", "the train", "a photo", "a taxi", "the dog out", "a shower", "some medicine", "the exam",
             "my umbrella", "a break", "{np} to school", "the train to {place}"],
    "buy": ["a new car", "bread", "some milk", "a ticket", "flowers", "a present for {name}", "new shoes",
            "a house", "groceries", "a book", "a gift for {np}", "a laptop"],
    "do": ["homework", "the dishes", "the shopping", "yoga", "the laundry", "a good job", "the housework",
           "my best", "exercises", "a crossword", "the shopping for {np}", "karate"],
    "have": ["a dog", "a cold", "breakfast", "a new bike", "two brothers", "a meeting", "a party", "lunch",
             "a headache", "three cats", "a party for {name}", "dinner with {np}"],
}  # fmt: skip
assert COMPLEMENTS.keys() == VERBS.keys()


PRESENT_END = ("every day", "every morning", "on Sundays", "at the weekend", "twice a week", "every evening",
               "in the morning", "after school", "on Fridays", "every summer")  # fmt: skip
PRE_ADVERBS = ("always", "usually", "often", "sometimes", "never")
PAST_MARKERS = ("yesterday", "last week", "last night", "two days ago", "last year", "in 2019", "an hour ago",
                "three weeks ago", "last summer", "a long time ago", "2 days ago", "last Monday", "in 1998",
                "the day before yesterday", "last month", "ten minutes ago", "yesterday morning")  # fmt: skip
PERFECT_ADVERBS = ("already", "just", "never")
PERFECT_END = ("this week", "twice", "before", "many times", "since Monday", "for two years", "recently",
               "three times", "since 2020", "this year")  # fmt: skip
FUTURE_MARKERS = ("tomorrow", "next week", "next year", "tonight", "soon", "later", "in two days",
                  "on Saturday", "next summer", "at 8", "in 3 weeks", "the day after tomorrow")  # fmt: skip
WILL_ADVERBS = ("probably", "definitely", "also", "never")
CONTRACT_BE = {"I": "I'm", "you": "you're", "he": "he's", "she": "she's", "it": "it's", "we": "we're",
               "they": "they're"}  # fmt: skip
CONTRACT_WILL = {p: f"{p}'ll" for p in SUBJECT_PRONOUNS}

# Out-of-domain material: none of it may contain a form of the 20 verbs (checked in tests).
OOD_FIXED = """The sky is blue.|Can you help me?|What time is it?|Where is the station?|Thank you very much!|
Good morning.|How are you?|It is cold today.|The weather is nice.|Happy birthday!|Please open the window.|
Nice to meet you.|The shop opens at 9.|Is it far from here?|The soup is too hot.|Who is that man?|
The train is late again.|I am so tired.|This is my favourite song.|Are you ready?|The door is open.|
How much is this?|It is raining.|What a beautiful day!|The meeting starts at 10.|Excuse me, where is the bank?|
Is this seat free?|The children are asleep.|My phone is broken.|Where are my keys?""".replace("\n", "").split("|")
# Verbs outside the table, each with objects that make sense for it.
OTHER_VERBS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("read", "reads", "read", ("a book", "the news", "a magazine", "every night")),
    ("run", "runs", "ran", ("fast", "in the park", "a marathon", "every morning")),
    ("sing", "sings", "sang", ("a song", "in a choir", "very well", "at the party")),
    ("swim", "swims", "swam", ("in the lake", "every morning", "very fast", "in the sea")),
    ("drive", "drives", "drove", ("a red car", "to the airport", "too fast", "a bus")),
    ("sleep", "sleeps", "slept", ("very well", "on the sofa", "a lot", "in a tent")),
    ("speak", "speaks", "spoke", ("Spanish", "very quietly", "to the manager", "three languages")),
    ("want", "wants", "wanted", ("some water", "a new phone", "a bigger flat", "coffee")),
    ("need", "needs", "needed", ("some help", "a new phone", "more time", "a doctor")),
    ("love", "loves", "loved", ("coffee", "the sea", "old songs", "this city")),
    ("help", "helps", "helped", ("a lot", "the old man", "in the kitchen", "at school")),
    ("open", "opens", "opened", ("the door", "the window", "a shop", "the box")),
    ("wait", "waits", "waited", ("for the train", "outside", "at the corner", "for an hour")),
    ("ask", "asks", "asked", ("a question", "for help", "the teacher", "about the price")),
    ("dance", "dances", "danced", ("all night", "at the party", "very well", "in the rain")),
    ("travel", "travels", "travelled", ("a lot", "by train", "around Europe", "alone")),
    ("learn", "learns", "learned", ("Spanish", "to swim", "fast", "a new song")),
    ("teach", "teaches", "taught", ("maths", "at a school", "children", "piano lessons")),
    ("drink", "drinks", "drank", ("some water", "coffee", "too much tea", "orange juice")),
    ("bring", "brings", "brought", ("a cake", "the keys", "some wine", "a friend")),
    ("sell", "sells", "sold", ("fruit", "old books", "the car", "tickets")),
    ("send", "sends", "sent", ("a message", "a parcel", "the photos", "a text")),
    ("find", "finds", "found", ("the keys", "a wallet", "a new job", "a nice café")),
    ("paint", "paints", "painted", ("the fence", "a picture", "the walls", "flowers")),
    ("draw", "draws", "drew", ("a map", "a picture", "cartoons", "a horse")),
    ("meet", "meets", "met", ("a friend", "the new boss", "at the station", "after class")),
    ("forget", "forgets", "forgot", ("the keys", "the password", "everything", "the date")),
    ("wear", "wears", "wore", ("a red dress", "glasses", "a hat", "a blue shirt")),
]
OOD_ADJS = ("happy", "tired", "late", "hungry", "busy", "ready", "sick", "at the beach", "very kind", "so tall",
            "from {place}", "in {place}", "at school", "angry", "asleep")  # fmt: skip
PROFESSIONS = ("doctor", "teacher", "nurse", "pilot", "singer", "lawyer", "chef", "farmer", "engineer", "painter")
MODAL_OOD = ("can", "should", "must", "might", "could", "will")

# Invented words (syllables, accents, place shapes): learnable-to-copy strings, with non-ASCII letters and sometimes digits.
ONSETS = ("b", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br", "kr", "st",
           "tr", "sh", "ch", "th", "gr", "pl", "dr", "zh", "kh", "sl", "fl", "")  # fmt: skip
VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ou", "ei", "ia", "y")
CODAS = ("", "", "", "", "n", "r", "l", "s", "k", "m", "t")
ACCENTS = {"a": "áäåã", "e": "éèëę", "o": "óöøô", "u": "úüů", "i": "íï", "l": "ł", "n": "ñń", "c": "çč",
            "s": "śš", "z": "žż", "r": "ř", "y": "ý"}  # fmt: skip
PLACE_SHAPES = ("{r}", "{r}", "{r}ville", "{r}burg", "{r}ów", "Port {r}", "San {r}", "Lake {r}", "{r} City",
                 "{r}holm", "Gate {n}", "Platform {n}", "District {n}", "{r} {n}")  # fmt: skip

# Training-only augmentation (corpus.py draws these for the train split alone, so the held-out set is unchanged).
EXOTIC_LETTERS = [chr(c) for c in (*range(0xC0, 0x100), *range(0x100, 0x180), *range(0x3B1, 0x3CA), *range(0x430, 0x450))
                  if chr(c).isalpha()]  # fmt: skip
# English-looking endings for invented nouns, so unseen real words ("answers", "shopping") look like something copied.
NOUN_SUFFIXES = ("", "", "", "er", "ing", "tion", "y", "le", "et", "ment")
# Singular endings an invented noun can also have, so that its number shows only in the -s suffix: a double s
# ("-oss", plural "-osses") and final consonant clusters ("-and", "-ord") that plain syllables never end in.
NOUN_SS_ENDINGS = ("ss", "ess", "oss", "ass")
NOUN_CLUSTERS = ("nd", "rd", "st", "nt", "ld", "rk", "ft", "mp", "ng", "ck", "lf", "rn", "rm", "th", "sk", "sp")
# Where an invented noun phrase goes in a complement; {thing} is "a/the/some ... noun(s)".
INVENTED_OBJECT_SHAPES = ("{thing}", "{thing}", "{thing}", "with {thing}", "for {thing}", "to {thing}",
                          "{thing} in {place}", "{thing} for {name}")  # fmt: skip
# Real English nouns for training-only subjects and objects, "singular:plural" or just the singular for a regular -s
# plural. corpus.py drops every entry that shares a word with a held-out atom, so held-out words stay unseen; the
# -ss singulars ("actress") teach that a final s alone does not make a plural.
EXTRA_SUBJECT_NOUNS = """actor artist athlete author barber builder butcher captain carpenter cashier chef child:children
clerk client dancer designer director driver editor employee engineer farmer fisherman:fishermen gardener guard guest
guide hairdresser hunter inventor journalist judge king lawyer librarian mechanic miner musician officer painter
partner passenger patient photographer player plumber poet policeman:policemen postman:postmen president prince
princess:princesses professor queen reporter researcher sailor scientist secretary:secretaries shopkeeper singer
soldier stranger surgeon tailor teenager tenant trainer tutor vet villager visitor waiter waitress:waitresses
witness:witnesses worker writer man:men woman:women lady:ladies gentleman:gentlemen actress:actresses
hostess:hostesses horse goat mouse:mice rabbit parrot hamster pony:ponies puppy:puppies kitten monkey duck
goose:geese fox:foxes wolf:wolves bear lion tiger snake turtle owl frog donkey""".split()
EXTRA_OBJECT_NOUNS = """apple book box:boxes bottle candle chair clock coat cup desk door dress:dresses envelope fork gift
guitar hat jacket key kite knife:knives ladder lamp map mirror mug newspaper notebook orange pen pencil phone
picture pillow plate potato:potatoes puzzle radio ring rope ruler sandwich:sandwiches scarf shirt shoe sock sofa
spoon stamp suitcase sweater ticket tomato:tomatoes towel toy vase wallet bicycle boat bridge building car castle
church:churches computer cookie dish:dishes drawing engine fence flower lesson machine message parcel question recipe
sentence shelf:shelves song story:stories street tablet tent truck wheel word exercise essay noodle biscuit pie cake
carrot banana lemon onion pepper cherry:cherries strawberry:strawberries melon glass:glasses bus:buses""".split()
EXTRA_ACTIVITIES = """swimming fishing hiking camping sailing jogging skiing gardening knitting baking cycling dancing
surfing climbing painting running singing skating bowling""".split()

# --- Longer sentences (clauses.py) ---------------------------------------------------------------------------------
# How clauses are joined: (connector, chance of a comma before it). "when"/"while"/"because" may also open the
# sentence ("When he goes home, she cooks dinner"). All shared grammar words, in both splits.
CONNECTORS = (("and", 0.25), ("but", 0.6), ("because", 0.1), ("so", 0.7), ("then", 1.0), ("and then", 0.2),
              ("when", 0.1), ("while", 0.3))  # fmt: skip
FRONT_CONNECTORS = ("When", "While", "Because")
# Not "Ms." or "Mt.": the agent's sentence splitter (sentencex) ends a sentence after them, so the model never sees one.
TITLES = ("Dr.", "Mrs.", "Mr.", "Prof.")
REL_PRONOUNS = ("who", "who", "that")
# Split by index like the complements: fixed adverbial phrases a clause can carry (no covered verb form in any).
LONG_PPS = """in the rain|on the way home|without a word|in a hurry|with a big smile|after lunch|before breakfast|by bus|
on foot|in the old town|during the holidays|at the end of the street|in the middle of the night|for the first time|
with great care|under the bridge|along the canal|around the corner|through the forest|by train|after the storm|
in the evening sun|before the concert|after the meeting|in the snow|at the bus stop|on the top floor|by the window|
in the back garden|behind the old church|across the square|near the harbour|after dinner|in the kitchen|on the balcony|
at the corner shop|with a heavy bag|in silence|on the beach|up the hill|down the road|past the bakery|
in the waiting room|on the night train|at the airport|by the lake|in the queue|under an umbrella""".replace(
    "\n", "").split("|")
# Nouns for lists ("bread, milk and eggs"), split by index.
LIST_ITEMS = """bread milk eggs apples pears carrots onions rice pasta cheese butter tea coffee juice lemons oranges
plums nuts grapes biscuits stamps pens notebooks candles plates cups spoons socks scarves gloves towels maps
postcards batteries magazines crayons flour sugar salt beans peas potatoes lettuce yoghurt honey jam soap shampoo
envelopes folders markers""".split()
LIST_HEADS = ("some fruit", "a few things", "the usual things", "some vegetables", "everything", "some supplies")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
UNITS = ("kilometres", "km", "miles", "metres", "hours", "minutes", "euros", "dollars", "kilos", "litres", "pages")
# Street and landmark shapes for invented places with abbreviations ("Kolvej St.", "St. Brona's Church").
ABBR_PLACE_SHAPES = ("{r} St.", "St. {r}'s Church", "{r} Ave.", "{r} Rd.")
# Clauses without a covered verb form, for mixed and out-of-domain sentences.
PLAIN_BE_ADJS = ("happy", "tired", "late", "hungry", "busy", "ready", "sick", "very kind", "so tall", "angry",
                 "asleep", "nervous", "at home", "outside", "in a good mood", "really quiet", "a bit cold")  # fmt: skip
