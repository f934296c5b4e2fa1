"""Small hand-written news texts shared by the story-engine tests (dedup, cluster, analysis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.models import Article

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def article(
    title: str, text: str = "", outlet: str = "example.com", minutes: float = 0, **kw: object
) -> Article:
    """An Article as normalize would hand it over, published ``minutes`` after T0."""
    when = T0 + timedelta(minutes=minutes)
    slug = abs(hash((title, text, outlet)))
    url = f"https://{outlet}/story/{slug}"
    return Article(
        source_id=outlet,
        outlet=outlet,
        url=url,
        canonical_url=url,
        title=title,
        summary="",
        text=text,
        published=when,
        fetched=when,
        **kw,  # type: ignore[arg-type]
    )


WIRE_STORY = (
    "Commerce tightens AI chip export rules",
    "WASHINGTON (Reuters) - The U.S. Commerce Department on Tuesday tightened export controls "
    "on advanced artificial intelligence chips, requiring licences for shipments of Nvidia and "
    "AMD accelerators to 40 more countries, officials said. The Bureau of Industry and Security "
    "said the rule closes loopholes that let Chinese firms buy restricted chips through "
    "subsidiaries abroad. Companies have 30 days to comply, and violations carry penalties of up "
    "to $300,000 per shipment, the bureau said in a statement.",
)

# The same wire text as a regional paper runs it: no credit, a new headline, a trimmed ending.
EDITED_COPY = (
    "US tightens rules on AI chip exports",
    "The U.S. Commerce Department on Tuesday tightened export controls "
    "on advanced artificial intelligence chips, requiring licences for shipments of Nvidia and "
    "AMD accelerators to 40 more countries, officials said. The Bureau of Industry and Security "
    "said the rule closes loopholes that let Chinese firms buy restricted chips through "
    "subsidiaries abroad. Companies have 30 days to comply, the bureau said.",
)

OWN_REPORTING = (
    "Chipmakers weigh costs of new US licence rule",
    "Nvidia and AMD face months of licence applications after the Commerce Department widened "
    "its AI chip export controls to 40 more countries on Tuesday. Analysts at Bernstein estimated "
    "the Bureau of Industry and Security rule could delay $2 billion of accelerator shipments. "
    "Executives said they were studying the rule and would comply within the 30-day window, "
    "while lobbyists in Washington prepared to ask for exemptions for allied countries.",
)

QUAKE_SUMATRA = [
    (
        "Strong earthquake hits Sumatra, killing 12",
        "A magnitude 6.1 earthquake struck the Indonesian island of Sumatra on Tuesday, killing at "
        "least 12 people and damaging hundreds of homes in Padang, officials said. The quake was "
        "centred 40 km off the coast at a depth of 10 km. Rescue teams searched collapsed buildings "
        "in Padang through the night while aftershocks rattled West Sumatra province. Indonesia's "
        "disaster agency said 2,000 residents fled to higher ground fearing a tsunami.",
    ),
    (
        "Sumatra quake death toll rises to 12 as rescuers dig in Padang",
        "Rescuers in Padang pulled survivors from collapsed houses after Tuesday's magnitude 6.1 "
        "earthquake off West Sumatra. Indonesia's disaster agency said the death toll rose to 12 "
        "and more than 2,000 people were sheltering in tents. The earthquake, 40 km off the "
        "Sumatra coast, damaged hundreds of homes, a mosque and a school in Padang.",
    ),
    (
        "Indonesia: Padang residents flee after 6.1 Sumatra earthquake",
        "Thousands of residents of Padang fled to higher ground after a magnitude 6.1 earthquake "
        "shook West Sumatra on Tuesday. Officials in Indonesia said 12 people died and hundreds of "
        "homes were damaged. The disaster agency sent rescue teams to Padang and warned of "
        "aftershocks along the Sumatra coast.",
    ),
]

QUAKE_HAITI = [
    (
        "Magnitude 7.0 earthquake devastates Haiti capital",
        "A magnitude 7.0 earthquake struck near Port-au-Prince, Haiti, on Tuesday, collapsing the "
        "presidential palace and killing thousands of people, officials said. President Rene "
        "Preval said the capital was devastated. The quake was centred 15 km south-west of "
        "Port-au-Prince at a depth of 10 km. The United Nations said its Haiti mission "
        "headquarters collapsed and many staff were missing.",
    ),
    (
        "Haiti quake: Port-au-Prince in ruins, UN staff missing",
        "The magnitude 7.0 earthquake that hit Haiti left Port-au-Prince in ruins, with the "
        "presidential palace and the United Nations headquarters collapsed. President Rene Preval "
        "described the damage as unimaginable. Thousands of people were feared dead in "
        "Port-au-Prince as aid agencies rushed teams to Haiti.",
    ),
]
