"""Rebuild seeds/articles.jsonl and seeds/gold.jsonl from the seed page (../shared/seeds/) plus our own items.

Run from the repository root: python seeds/build_seeds.py"""
import json
from pathlib import Path

PAGE = Path(__file__).resolve().parent.parent.parent / "shared/seeds/000_0b5113854523422b.txt"
L = PAGE.read_text(encoding="utf-8").split("\n")


def ln(i: int) -> str:
    """Line i of the page (1-based), stripped."""
    return L[i - 1].strip()


main_body = "\n".join(L[0:42]).rstrip()
sudani_body = "\n\n".join(ln(i) for i in [47,49,51,53,55,57,59,63,65,67,71,73,75,77,79,81])
reu_t, reu_x = ln(61).split(" قالت", 1)  # teaser: headline and first sentence on one line
cen_t, cen_x = ln(69).split(" كشفت", 1)
similar = [line.strip().lstrip("•").strip() for line in L[84:94]]
assert len(similar) == 10 and similar[9].startswith("التفاصيل"), similar
MASALLA = "المسلة"
footer = "\n\n".join(["المسلة – متابعة – وكالات", ln(33), "About Post Author زين", "See author's posts", "المصدر: المسلة"])
arts = []


def add(id, title, text, lang=None, source=None, published=None, url=None, story=None, note="page"):
    arts.append(dict(id=id, title=title, text=text, lang=lang, source=source, published=published, url=url,
                     _story=story, _from=note))



add("seed-main", "", main_body, source=MASALLA,
    published="2024-09-15", story="main-analysis", note="page (the page text has no headline, so none is given)")
add("seed-readalso-sudani", ln(45), sudani_body, story="sudani-bloomberg")
add("seed-reuters-deal", reu_t.strip(), "قالت" + reu_x, story="reuters-deal")
add("seed-centcom-raid", cen_t.strip(), "كشفت" + cen_x, story="centcom-raid")
stories = {2: "sudani-bloomberg", 3: "sudani-bloomberg", 4: "sudani-bloomberg", 6: "sudani-bloomberg"}
for i, h in enumerate(similar):
    add(f"similar-{i+1:02d}", h, h, story=stories.get(i, f"similar-{i+1:02d}"), note="page, 'similar articles' list")
own = "written by us"
add("en-sudani-bloomberg", "Iraq's prime minister says US troops are no longer needed after defeat of Islamic State",
    "Iraqi Prime Minister Mohammed Shia al-Sudani said in an interview with Bloomberg in Baghdad that there is no longer "
    "a need for US forces in Iraq because the Islamic State group has been defeated, and that his government will soon "
    "announce a timetable for the withdrawal of the US-led coalition. The United States keeps about 2,500 troops in Iraq "
    "and about 900 in neighbouring Syria.", lang="en", source="example-wire.com", published="2024-09-10",
    story="sudani-bloomberg", note=own)
add("fr-sudani-bloomberg", "Irak : le Premier ministre estime que les troupes américaines ne sont plus nécessaires",
    "Le Premier ministre irakien, Mohammed Chia al-Soudani, a déclaré dans un entretien accordé à Bloomberg à Bagdad que "
    "la présence des forces américaines en Irak n'était plus justifiée depuis la défaite du groupe État islamique. "
    "Il compte annoncer prochainement un calendrier pour le retrait de la coalition internationale.",
    lang="fr", source="exemple-presse.fr", published="2024-09-11", story="sudani-bloomberg", note=own)
add("en-reuters-deal", "US and Iraq reach understanding on plan to withdraw coalition forces, sources say",
    "Washington and Baghdad have reached an understanding on a plan for the withdrawal of the US-led coalition from Iraq, "
    "several sources familiar with the matter said. Hundreds of troops would leave by September 2025 and the rest by the "
    "end of the following year. The agreement still needs approval from the leaders of both countries and a date for its "
    "announcement.", lang="en", source="example-wire.com", published="2024-09-06", story="reuters-deal", note=own)
add("fr-centcom-raid", "Irak : 15 membres de l'État islamique tués lors d'un raid conjoint avec l'armée américaine",
    "Le commandement central américain (Centcom) a annoncé la mort de 15 combattants du groupe État islamique lors d'une "
    "opération menée avec les forces de sécurité irakiennes dans l'ouest de l'Irak.", lang="fr",
    source="exemple-presse.fr", published="2024-08-31", story="centcom-raid", note=own)
add("en-niger-withdrawal", "US completes withdrawal of its troops from Niger",
    "The United States has completed the withdrawal of its forces from Niger, handing over its last base in Agadez "
    "after the military government ordered American troops to leave the country.", lang="en", source="example-wire.com",
    published="2024-08-05", story="similar-06", note=own)
add("en-storm-boris", "Storm Boris brings deadly floods to central Europe",
    "Heavy rain from Storm Boris flooded towns in the Czech Republic, Poland, Austria and Romania, killing at least "
    "sixteen people and forcing thousands from their homes as rivers burst their banks.", lang="en",
    source="example-wire.com", published="2024-09-16", story="storm-boris", note=own)
add("fr-tempete-boris", "La tempête Boris provoque des inondations meurtrières en Europe centrale",
    "Les pluies diluviennes de la tempête Boris ont inondé des villes en République tchèque, en Pologne, en Autriche et "
    "en Roumanie, faisant au moins seize morts et forçant des milliers d'habitants à quitter leur domicile.", lang="fr",
    source="exemple-presse.fr", published="2024-09-16", story="storm-boris", note=own)
add("en-iphone16", "Apple unveils iPhone 16 with new camera button",
    "Apple introduced the iPhone 16 at its September event in Cupertino, adding a dedicated camera control button and "
    "chips designed for its Apple Intelligence features.", lang="en", source="example-tech.com",
    published="2024-09-09", story="iphone16", note=own)
for id, title, body, story in [
    ("masalla-electricity", "وزارة الكهرباء تعلن زيادة ساعات تجهيز الطاقة في بغداد",
     "بغداد/المسلة الحدث: أعلنت وزارة الكهرباء العراقية زيادة ساعات تجهيز الطاقة للمنازل في العاصمة بغداد بعد دخول وحدات توليد جديدة الخدمة.\n\nوقال المتحدث باسم الوزارة إن الإنتاج ارتفع إلى مستوى قياسي هذا الأسبوع.", "masalla-electricity"),
    ("masalla-budget", "البرلمان العراقي يناقش تعديل قانون الموازنة العامة",
     "بغداد/المسلة الحدث: عقد مجلس النواب العراقي جلسة لمناقشة مشروع تعديل جداول الموازنة العامة الاتحادية للسنة الحالية.\n\nوطالب نواب بزيادة التخصيصات للمحافظات الجنوبية.", "masalla-budget"),
    ("masalla-heat", "الأنواء الجوية: ارتفاع درجات الحرارة في بغداد والمحافظات الجنوبية",
     "بغداد/المسلة الحدث: توقعت هيئة الأنواء الجوية ارتفاعا في درجات الحرارة خلال الأيام المقبلة لتتجاوز خمسين درجة مئوية في البصرة.\n\nودعت الهيئة المواطنين إلى تجنب التعرض لأشعة الشمس وقت الظهيرة.", "masalla-heat"),
]:
    add(id, title, body + "\n\n" + footer, lang=None, source=MASALLA, published="2024-09-14", story=story,
        note=own + " (same footer as the page, to exercise boilerplate detection)")
with open('seeds/articles.jsonl', 'w', encoding='utf-8') as f, open('seeds/gold.jsonl', 'w', encoding='utf-8') as g:
    for a in arts:
        story, note = a.pop('_story'), a.pop('_from')
        f.write(json.dumps({k: v for k, v in a.items() if v is not None}, ensure_ascii=False) + "\n")
        g.write(json.dumps({"id": a["id"], "story": story, "from": note}, ensure_ascii=False) + "\n")
print(len(arts))
