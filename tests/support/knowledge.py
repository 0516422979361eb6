"""A small corpus on distinct topics, and queries whose best chunk is known, for testing
retrieval quality. At CORPUS_CHUNKING a chunk is about one paragraph (the title goes with
the first), and each query's expected chunk is named by a phrase only it holds."""

from __future__ import annotations

from stepline.retrieval.chunking import ChunkingOptions

CORPUS_CHUNKING = ChunkingOptions(target_chars=200, overlap_chars=0)

CORPUS: dict[str, str] = {
    "photosynthesis.md": (
        "# Photosynthesis\n\n"
        "Photosynthesis is how green plants, algae and some bacteria turn light into "
        "chemical energy stored in sugar.\n\n"
        "Chlorophyll in the chloroplasts absorbs sunlight, mostly red and blue light, and "
        "reflects green, which is why leaves look green.\n\n"
        "In the Calvin cycle the enzyme RuBisCO fixes carbon dioxide from the air into "
        "glucose, using the ATP made by the light reactions."
    ),
    "volcanoes.md": (
        "# Volcanoes\n\n"
        "A volcano is an opening in the crust where magma, ash and gases escape from below "
        "the surface.\n\n"
        "Stratovolcanoes such as Mount Fuji build steep cones of alternating lava and ash "
        "layers and erupt explosively.\n\n"
        "Pyroclastic flows are fast avalanches of hot gas and volcanic debris that race down "
        "a volcano's slopes."
    ),
    "sourdough.md": (
        "# Sourdough bread\n\n"
        "Sourdough is bread leavened by a starter, a culture of wild yeast and lactobacilli "
        "kept alive with flour and water.\n\n"
        "Feed the starter twice a day; it is ready to bake with when it doubles and smells "
        "pleasantly sour.\n\n"
        "A long cold fermentation of the dough in the fridge gives sourdough its open crumb "
        "and tangy flavour."
    ),
    "aqueducts.md": (
        "# Roman aqueducts\n\n"
        "Roman aqueducts carried water from distant springs into cities using only gravity "
        "and a gentle, constant gradient.\n\n"
        "The Pont du Gard in southern France is a three-tiered aqueduct bridge built of "
        "limestone blocks without mortar."
    ),
    "tcp.md": (
        "# TCP congestion control\n\n"
        "TCP congestion control keeps senders from overwhelming the network by adjusting "
        "the congestion window.\n\n"
        "Slow start doubles the congestion window every round trip until packet loss or the "
        "threshold is reached.\n\n"
        "Retransmission timeouts and duplicate acknowledgements signal lost packets to the "
        "sender."
    ),
    "honeybees.md": (
        "# Honeybees\n\n"
        "Honeybees live in colonies with one queen, thousands of female workers and a few "
        "male drones.\n\n"
        "Foragers perform the waggle dance to tell hive mates the direction and distance of "
        "flowers rich in nectar.\n\n"
        "Bees turn nectar into honey by evaporating its water and adding enzymes, then seal "
        "it in wax cells."
    ),
    "chess.md": (
        "# Chess openings\n\n"
        "The Sicilian Defence answers the king's pawn opening with c5 and leads to sharp, "
        "unbalanced positions.\n\n"
        "Castling moves the king two squares toward a rook and the rook to the other side, "
        "tucking the king into safety."
    ),
    "coral.md": (
        "# Coral reefs\n\n"
        "Coral reefs are built by colonies of tiny polyps that secrete calcium carbonate "
        "skeletons in warm shallow seas.\n\n"
        "When the ocean gets too warm, corals expel their symbiotic algae and turn white, an "
        "event called coral bleaching."
    ),
    "jazz.md": (
        "# Jazz improvisation\n\n"
        "Jazz musicians improvise melodies over chord changes, often following the "
        "structure of a twelve-bar blues.\n\n"
        "Bebop, pioneered by Charlie Parker and Dizzy Gillespie, brought fast tempos and "
        "complex harmonies to jazz."
    ),
    "immunity.md": (
        "# The immune system\n\n"
        "White blood cells defend the body against infection by bacteria, viruses and "
        "other pathogens.\n\n"
        "B cells produce antibodies, proteins that bind to a specific antigen and mark the "
        "invader for destruction.\n\n"
        "Vaccines train the immune system with a harmless antigen so it remembers the "
        "pathogen."
    ),
}

QUERIES: list[tuple[str, str]] = [
    ("why do leaves look green", "reflects green"),
    ("enzyme that fixes carbon dioxide into glucose", "RuBisCO"),
    ("what is a pyroclastic flow", "Pyroclastic flows"),
    ("steep cone explosive eruption like Mount Fuji", "Stratovolcanoes"),
    ("how often should I feed my starter", "Feed the starter"),
    ("cold fermentation in the fridge", "long cold fermentation"),
    ("bridge built of limestone without mortar", "Pont du Gard"),
    ("slow start doubles the window each round trip", "Slow start"),
    ("how do bees tell each other where flowers are", "waggle dance"),
    ("how is honey made from nectar", "evaporating"),
    ("castling the king", "Castling"),
    ("why do corals turn white", "bleaching"),
    ("Charlie Parker bebop", "Bebop"),
    ("antibodies bind to antigens", "B cells"),
    ("how do vaccines work", "Vaccines train"),
]
