"""Evaluation texts for the course: a small corpus for perplexity and fixed prompts.

The paragraphs are ordinary English prose on everyday and factual topics, written
for this course, so that perplexity numbers are reproducible and free to share.
"""
from __future__ import annotations

# Sixteen paragraphs of roughly 170 to 195 words each, about 2,950 words in all.
EVAL_TEXTS: tuple[str, ...] = (
    (
        "Bread rises because of a small living partner in the dough. Baker's yeast is a "
        "single-celled fungus that feeds on the sugars released when flour is mixed with water "
        "and left to rest. As it feeds, the yeast gives off carbon dioxide gas and a little "
        "alcohol. On its own the gas would simply escape, but wheat flour contains two "
        "proteins, glutenin and gliadin, that join together to form gluten when the dough is "
        "wet and worked. Kneading stretches and aligns the gluten into a springy network that "
        "traps the gas in countless tiny pockets, so the whole mass slowly swells. Warmth "
        "speeds the process and cold slows it, which is why many bakers leave their dough in a "
        "cool place overnight to develop more flavour. In the oven the trapped gas expands "
        "further and some of the water turns to steam, giving the loaf a final lift before the "
        "heat sets the starches and proteins into a firm crumb. Meanwhile the outer surface "
        "dries and browns as sugars and proteins react together, forming the crust and much of "
        "the smell of fresh bread."
    ),
    (
        "People have marked dangerous coasts with fire for thousands of years. The most famous "
        "early example was the Pharos of Alexandria, a tall tower built in the third century BC "
        "on an island at the entrance to the Egyptian harbour, which stood for well over a "
        "thousand years before earthquakes brought it down. For centuries afterwards most "
        "coastal lights were simply open fires or candles, which were dim and hard to tell "
        "apart. Things improved greatly in the eighteenth and nineteenth centuries. Oil lamps "
        "with polished reflectors made the beams brighter, and in the 1820s the French "
        "physicist Augustin Fresnel designed a lens built from rings of glass prisms that "
        "gathered the light of a lamp and sent it out as a strong, narrow beam. Each lighthouse "
        "was also given its own pattern of flashes or colours, so that a sailor could identify "
        "it from a chart at night. Keepers once lived at the towers to trim wicks and wind "
        "clockwork, often in lonely conditions. Today almost all lighthouses are automatic, and "
        "satellite navigation has taken over much of their work, although many still shine as a "
        "reliable backup."
    ),
    (
        "A bicycle standing still falls over almost at once, yet the same machine ridden at a "
        "steady pace seems to balance itself. The main reason is steering. When a moving "
        "bicycle begins to lean to one side, the rider, often without noticing, turns the "
        "handlebars slightly in that direction. This steers the wheels back underneath the "
        "centre of mass, much as a person balances a broom on a fingertip by moving their hand "
        "beneath it. The design of the front fork helps as well. Because the steering axis is "
        "tilted and meets the ground a little ahead of the point where the tyre touches it, a "
        "leaning bicycle tends to turn its front wheel into the lean by itself. For many years "
        "people assumed that the spinning wheels acted like gyroscopes and held the bicycle up, "
        "and that effect does exist, but experiments with specially built bicycles have shown "
        "that it is not essential. Speed matters because every small correction works better "
        "when the bicycle is moving forward quickly enough for a slight turn to bring the "
        "wheels back under the rider in time."
    ),
    (
        "Twice a day, along most coasts, the sea creeps up the shore and then slips back again. "
        "These tides are caused mainly by the pull of the Moon. Gravity weakens with distance, "
        "so the Moon pulls a little harder on the ocean facing it than on the centre of the "
        "Earth, and a little harder on the centre of the Earth than on the ocean on the far "
        "side. The result is two gentle bulges of water, one beneath the Moon and one on the "
        "opposite side, and as the Earth turns each day a given place passes through both of "
        "them. Because the Moon also moves along its orbit, the full cycle takes about "
        "twenty-four hours and fifty minutes, so high tide arrives roughly fifty minutes later "
        "each day. The Sun has a similar but smaller effect. When the Sun and Moon line up, at "
        "new and full moon, their pulls combine to give larger spring tides, and when they "
        "stand at right angles the range is smaller, giving neap tides. The shape of the "
        "coastline and the depth of the sea floor change the details greatly from place to "
        "place."
    ),
    (
        "Sending a letter seems simple, but it relies on a large and carefully organised "
        "system. For most of history, messages were carried by couriers working for rulers or "
        "merchants, and the person receiving a letter often paid for it on delivery, with the "
        "price depending on the distance and the number of sheets. In 1840 Britain introduced a "
        "cheap uniform rate paid in advance by the sender, shown by a small adhesive stamp that "
        "became known as the Penny Black. The idea spread quickly to other countries, and "
        "writing letters became something that ordinary people could afford. Later came post "
        "boxes on street corners and postal codes that let sorting offices group mail by area. "
        "Today machines read printed and handwritten addresses, print barcodes on envelopes and "
        "sort many thousands of items an hour, while vans, trains and aircraft carry them "
        "between cities. International mail works because postal services agreed, through the "
        "Universal Postal Union founded in 1874, to deliver one another's letters, so a single "
        "stamp can carry a postcard almost anywhere in the world."
    ),
    (
        "A library is one of the oldest ways in which communities share knowledge. Ancient "
        "collections of clay tablets and scrolls were gathered by kings and temples, and the "
        "great library at Alexandria became famous for trying to hold a copy of every important "
        "book in the Greek world. For most of history, though, books were rare and expensive, "
        "and libraries belonged to monasteries, universities or wealthy individuals. Public "
        "lending libraries, free to everyone in the town, spread widely in the nineteenth and "
        "early twentieth centuries, often helped by gifts from philanthropists. To make large "
        "collections usable, librarians developed catalogues and classification schemes such as "
        "the Dewey Decimal system, which gives each subject a number so that related books sit "
        "together on the shelves. Modern libraries do far more than lend printed books. They "
        "offer computers and internet access, study spaces, newspapers, reading sessions for "
        "children and help with finding information, and many lend ebooks and audiobooks "
        "online. Above all, they remain quiet public places where anyone may sit and read "
        "without paying."
    ),
    (
        "A honeybee colony behaves almost like a single creature made of thousands of parts. At "
        "its centre is one queen, whose main task is laying eggs, sometimes well over a "
        "thousand in a day during summer. Most of the other bees are female workers, and their "
        "jobs change as they grow older. Young workers clean cells, feed larvae and build wax "
        "comb, while older ones guard the entrance and finally fly out to gather nectar, pollen "
        "and water. A forager that finds a good patch of flowers can tell her sisters where it "
        "is by performing a waggle dance on the comb, in which the angle of the dance shows the "
        "direction of the flowers relative to the sun and the duration of the waggling run "
        "indicates the distance. Nectar brought back to the hive is passed between workers, "
        "mixed with enzymes and fanned by their wings until much of the water evaporates, "
        "turning it into honey that keeps for a very long time. As they travel from flower to "
        "flower, bees also carry pollen, which is why they matter so much for fruit, nuts and "
        "many other crops."
    ),
    (
        "Turning on a tap is the last step of a long journey. A city usually draws its water "
        "from rivers, lakes, reservoirs behind dams, or wells that reach down into layers of "
        "porous rock. Before it reaches homes, the raw water passes through a treatment works. "
        "First, chemicals are often added that make fine particles of clay and dirt clump "
        "together into larger flakes, which then settle out in quiet tanks. The clearer water "
        "is filtered through beds of sand and gravel that catch much of what remains. Finally "
        "it is disinfected, commonly with chlorine, ultraviolet light or ozone, to kill harmful "
        "microbes, and a small amount of disinfectant is often left in the water to keep it "
        "safe on its way through the pipes. Pumps lift the treated water into storage tanks or "
        "towers on high ground, and from there gravity provides the steady pressure that pushes "
        "it through the network of mains beneath the streets. Engineers constantly test "
        "samples, watch for leaks and plan ahead for dry summers, because a reliable supply of "
        "clean water is one of the foundations of public health."
    ),
    (
        "Paper takes its name from papyrus, the reed that the ancient Egyptians sliced and "
        "pressed into writing sheets, but true paper was invented in China. By around the "
        "second century AD, papermakers there were soaking plant fibres such as bark, hemp and "
        "old rags, beating them into a pulp, and spreading the pulp thinly across a fine "
        "screen. As the water drained away, the fibres tangled into a thin mat that could be "
        "pressed and dried into a sheet. The craft travelled slowly west along trade routes, "
        "reaching the Islamic world in the eighth century and Europe some centuries later, "
        "where mills used water power to beat linen and cotton rags. Rags were always in short "
        "supply, and in the nineteenth century manufacturers learned to make pulp from wood, "
        "which allowed paper to be produced cheaply and in enormous quantities. Modern machines "
        "form a continuous sheet several metres wide and move it through presses and heated "
        "rollers at high speed. The basic principle, however, is much the same as it was nearly "
        "two thousand years ago: fibres suspended in water, caught on a mesh, and dried."
    ),
    (
        "A map is a way of fitting a large and complicated world onto a small flat surface, and "
        "every map involves choices about what to keep and what to leave out. A road map shows "
        "highways and towns but ignores most buildings, while a walking map records footpaths, "
        "streams and the shape of the land. The scale tells the reader how distances on paper "
        "relate to distances on the ground, so that one centimetre might stand for one "
        "kilometre. Hills are often shown with contour lines, which join points of equal "
        "height; where the lines crowd close together, the slope is steep. Because the Earth is "
        "round, no flat map can show its surface without some distortion. Different projections "
        "keep different properties correct, such as the shapes of small areas, the relative "
        "sizes of countries, or true compass directions, and each one bends something else out "
        "of true. The familiar Mercator projection, for example, is very useful to sailors but "
        "makes Greenland look far larger than it really is. Today most maps are built from "
        "satellite images and survey data stored in computers, which can redraw them at any "
        "scale."
    ),
    (
        "Weather forecasting starts with measurement. Every day, thousands of weather stations, "
        "ships, aircraft, balloons and satellites record the temperature, pressure, humidity "
        "and wind across the globe. This information is fed into computer models that divide "
        "the atmosphere into a three-dimensional grid of boxes and use the laws of physics to "
        "calculate how the air in each box will change over the next few minutes. Repeating "
        "this step many times carries the forecast hours and then days into the future. Because "
        "small errors in the starting measurements grow as the calculation runs, forecasters "
        "often run the same model many times with slightly different starting conditions. If "
        "most of these runs agree, confidence is high; if they spread widely, the outlook is "
        "uncertain, which is why forecasts often speak of a percentage chance of rain. "
        "Forecasts for the next two or three days are now very reliable in most places, and "
        "those for a week ahead are still useful, although detail fades beyond that. Human "
        "forecasters add value by interpreting the models, especially for local effects such as "
        "fog, thunderstorms and snow."
    ),
    (
        "Railways grew from a simple observation: a wheel running on a smooth rail meets far "
        "less resistance than one rolling along a rough road. Horses pulled wagons along wooden "
        "rails in mines for centuries before steam engines arrived. In the early nineteenth "
        "century, engineers in Britain put steam locomotives onto iron rails, and the opening "
        "of the Liverpool and Manchester Railway in 1830 showed that trains could carry both "
        "passengers and goods between cities on a regular timetable. Within a few decades, "
        "lines spread across Europe, North America and beyond, cutting journeys that had taken "
        "days to a matter of hours. Railways changed daily life in unexpected ways. Fresh food "
        "could reach distant markets, newspapers travelled overnight, and the need for "
        "consistent timetables encouraged countries to adopt standard time zones instead of "
        "local solar time. Steam gave way to diesel and electric traction during the twentieth "
        "century. Today high-speed lines carry passengers at around three hundred kilometres an "
        "hour, while long freight trains still move huge loads of coal, grain and containers "
        "efficiently."
    ),
    (
        "For most of history people told the time from the sky, using the position of the sun "
        "by day and the stars by night. Sundials, water clocks and marked candles measured the "
        "passing hours, but none of them worked well in every condition. Mechanical clocks "
        "appeared in Europe in the late thirteenth and fourteenth centuries, driven by falling "
        "weights and controlled by a device called an escapement, which lets the gears move "
        "forward in small, regular steps. These early clocks were often placed in church towers "
        "and might drift by a quarter of an hour a day. A great leap came in the seventeenth "
        "century, when Christiaan Huygens built a clock regulated by a swinging pendulum, whose "
        "steady period made timekeeping many times more accurate. Later, spring-driven watches "
        "and carefully made marine chronometers allowed sailors to find their longitude at sea. "
        "In the twentieth century, quartz crystals, which vibrate at a precise rate when "
        "electricity is applied, made accurate clocks cheap. The most precise timekeepers today "
        "are atomic clocks, which count the vibrations of atoms and would lose less than a "
        "second over millions of years."
    ),
    (
        "Composting turns kitchen and garden waste into dark, crumbly material that enriches "
        "the soil. The work is done mostly by bacteria and fungi, helped by worms, insects and "
        "other small creatures that break the material into smaller pieces. A good heap needs a "
        "balance of two kinds of ingredient. Green materials such as grass cuttings, vegetable "
        "peelings and coffee grounds are rich in nitrogen, while brown materials such as dry "
        "leaves, straw and shredded cardboard supply carbon. The microbes also need air and "
        "moisture, so a heap should be about as damp as a wrung-out sponge and turned now and "
        "then to let oxygen in. When conditions are right, the centre of a large heap can "
        "become surprisingly hot, which speeds up decay and kills many weed seeds. Without "
        "enough air, the process slows down and the heap can start to smell unpleasant. "
        "Depending on the method and the weather, compost may be ready in a few months or may "
        "take a year or more. Spread on beds or dug into the ground, it improves the structure "
        "of the soil, helps it hold water and returns nutrients to growing plants."
    ),
    (
        "Before printing, every book had to be copied by hand, a slow process that made books "
        "costly and rare. Printing from carved wooden blocks was practised in East Asia for "
        "centuries, and movable type made of baked clay and later of metal was developed in "
        "China and Korea. In Europe, around the middle of the fifteenth century, Johannes "
        "Gutenberg of Mainz combined several ideas into a practical system. He cast individual "
        "metal letters in a hand mould so that they were identical and could be reused, "
        "developed an oil-based ink that clung to metal, and adapted a screw press of the kind "
        "used for pressing grapes. A page could be set from the type, printed many times, and "
        "then broken up so that the letters could be used again. Printing shops spread rapidly "
        "across Europe, and within fifty years millions of books had been produced. Cheaper "
        "books helped to spread new ideas, encouraged reading and made spelling more uniform. "
        "Later inventions such as steam-powered presses, rotary printing and offset lithography "
        "made printing faster still, and daily newspapers became part of ordinary life."
    ),
    (
        "Glass is made mostly from sand, which is largely silica, heated with other ingredients "
        "until it melts into a thick, glowing liquid. Pure silica melts only at very high "
        "temperatures, so glassmakers add soda to lower the melting point and lime to make the "
        "finished glass resist water. When the melt cools, its atoms do not have time to "
        "arrange themselves into a regular crystal, and they are frozen into a disordered but "
        "rigid solid. Because it has no regular planes of weakness, glass breaks with smooth, "
        "curved edges. People in Mesopotamia and Egypt were making glass beads and small "
        "vessels more than three thousand years ago, and the invention of glassblowing, "
        "probably in the eastern Mediterranean in the first century BC, made cups and bottles "
        "common. Making large, flawless sheets for windows required slow grinding and polishing "
        "until the 1950s, when the float process was introduced: molten glass is poured onto a "
        "bath of molten tin, where it spreads into a flat, even sheet. Today glass is used in "
        "everything from windows and bottles to optical fibres that carry telephone and "
        "internet signals as pulses of light."
    ),
)

# Repeated to build prompts of a chosen length; the trailing space keeps repeats apart.
BASE_PROMPT: str = (
    "The morning train left the station on time and carried its passengers "
    "slowly along the quiet river valley. "
)

# A fixed prompt, so that runs in different notebooks start from the same text.
REFERENCE_PROMPT = "The history of the printing press begins"

_SHOPPING_LIST = "\n".join([
    "Shopping list for Saturday:",
    "two loaves of brown bread",
    "a dozen eggs",
    "apples, carrots and onions",
    "washing-up liquid",
    "Other things I still need to remember:",
])

# Prompts that probe unusual inputs: one word, a long context, line breaks, repetition.
EDGE_PROMPTS: dict[str, str] = {
    "very_short": "Hello",
    "very_long": "\n\n".join(EVAL_TEXTS[:6]),
    "multi_line": _SHOPPING_LIST,
    "repetitive": ("the cat sat on the mat " * 60).strip(),
}


def eval_texts(n: int | None = None) -> list[str]:
    """Return the first ``n`` evaluation texts, or all of them when ``n`` is None."""
    if n is None:
        return list(EVAL_TEXTS)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(EVAL_TEXTS):
        raise ValueError(
            f"n must be an int from 1 to {len(EVAL_TEXTS)} or None; got {n!r}"
        )
    return list(EVAL_TEXTS[:n])


def long_text(min_words: int = 1500) -> str:
    """Join EVAL_TEXTS with blank lines, cycling from the start, until ``min_words`` is reached."""
    if isinstance(min_words, bool) or not isinstance(min_words, int) or min_words < 1:
        raise ValueError(f"min_words must be an int of at least 1; got {min_words!r}")
    parts: list[str] = []
    words = 0
    while words < min_words:
        text = EVAL_TEXTS[len(parts) % len(EVAL_TEXTS)]
        parts.append(text)
        words += len(text.split())
    return "\n\n".join(parts)
