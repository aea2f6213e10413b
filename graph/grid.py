"""The XY(Z) grid of a sweep: a labelled contact sheet drawn with Pillow.

The first axis runs across (columns, its name and values on the top margin), the second down
(rows, values on the left margin); every further axis makes a block of its own, stacked below
the others under a band naming its values, as XY-plot users know from ComfyUI and A1111. A cell
shows the job's pictures (side by side for a batch); a job that failed shows its status instead.
The PNG embeds the workflow and the sweep, so it reopens as both.
"""
from __future__ import annotations

import itertools
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from latentgraph.graph.png_metadata import png_info

GAP = 4
BACKGROUND, INK, EMPTY, BAND = (255, 255, 255), (20, 20, 20), (225, 225, 225), (236, 240, 248)
MAX_LINES = 6  # of one label; longer ones end with an ellipsis


def cell_files(images: list[dict]) -> list[Path]:
    """The pictures a job's cell shows: those of its first output node with saved images (else its
    previews), given as the executor reports them ({"node_id", "path"} or {"node_id", "kind", "filename"})."""
    if not images:
        return []
    saved = [i for i in images if i.get("kind") == "output"] or images
    node = saved[0].get("node_id")
    return [Path(i["path"]) for i in saved if i.get("node_id") == node and i.get("path")]


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _wrap(text: str, font, width: int) -> list[str]:
    """Greedy word wrap to `width` pixels; words longer than a line are cut."""
    lines: list[str] = []
    for paragraph in str(text).splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if font.getlength(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while font.getlength(word) > width and len(word) > 1:
                cut = max(1, next((n for n in range(len(word), 0, -1) if font.getlength(word[:n]) <= width), 1))
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    if len(lines) > MAX_LINES:
        lines = lines[:MAX_LINES]
        lines[-1] = lines[-1][:-1] + "…"
    return lines


def _cell(files_or_status, size: tuple[int, int], font) -> Image.Image:
    if isinstance(files_or_status, (list, tuple)) and files_or_status:
        pictures = []
        for path in files_or_status:
            with Image.open(path) as picture:
                pictures.append(picture.convert("RGB"))
        width = sum(p.width for p in pictures) + GAP * (len(pictures) - 1)
        sheet = Image.new("RGB", (width, max(p.height for p in pictures)), BACKGROUND)
        x = 0
        for picture in pictures:
            sheet.paste(picture, (x, 0))
            x += picture.width + GAP
        return sheet
    status = files_or_status if isinstance(files_or_status, str) else "no image"
    blank = Image.new("RGB", size, EMPTY)
    draw = ImageDraw.Draw(blank)
    for n, line in enumerate(_wrap(status, font, size[0] - 4)):
        draw.text((2, 2 + n * _line_height(font)), line, fill=(150, 30, 30), font=font)
    return blank


def _line_height(font) -> int:
    ascent, descent = font.getmetrics() if hasattr(font, "getmetrics") else (10, 2)
    return ascent + descent + 2


def contact_sheet(axes: list, cells: dict[tuple, object]) -> Image.Image:
    """Draw the grid. `axes`: the grid axes ({name, labels}: objects or dicts) as the sweep plan lists
    them; `cells`: coords -> picture files, or a status text for a job without pictures."""
    axes = [(a["name"], list(a["labels"])) if isinstance(a, dict) else (a.name, list(a.labels)) for a in axes]
    first_size = next((_cell(v, (64, 64), _font(12)).size for v in cells.values()
                       if isinstance(v, (list, tuple)) and v), (64, 64))
    font = _font(max(12, min(28, first_size[1] // 16)))
    line = _line_height(font)
    images = {coords: _cell(value, first_size, font) for coords, value in cells.items()}
    cell_w = max([first_size[0], *(i.width for i in images.values())])
    cell_h = max([first_size[1], *(i.height for i in images.values())])

    x_axis = axes[0] if axes else ("", [""])
    y_axis = axes[1] if len(axes) > 1 else ("", [""])
    z_axes = axes[2:]
    col_labels = [_wrap(label, font, cell_w) for label in x_axis[1]]
    longest = max((font.getlength(label) for label in y_axis[1]), default=0)
    label_w = int(min(max(longest, font.getlength(y_axis[0]), line * 3) + 8, max(cell_w, line * 12)))
    row_labels = [_wrap(label, font, label_w - 8) for label in y_axis[1]]
    header_h = line * (1 + max((len(lines) for lines in col_labels), default=1)) + GAP
    row_hs = [max(cell_h, line * len(lines)) for lines in row_labels]
    columns, rows = len(x_axis[1]), len(y_axis[1])
    block_w = label_w + columns * (cell_w + GAP)
    block_h = header_h + sum(h + GAP for h in row_hs)
    z_combos = list(itertools.product(*(range(len(z[1])) for z in z_axes)))
    band_h = line + GAP if z_axes else 0
    sheet = Image.new("RGB", (block_w + GAP, (band_h + block_h) * len(z_combos) + GAP), BACKGROUND)
    draw = ImageDraw.Draw(sheet)

    top = GAP
    for z in z_combos:
        if z_axes:
            band = "   ".join(f"{name}: {labels[k]}" for (name, labels), k in zip(z_axes, z))
            draw.rectangle((0, top - GAP // 2, sheet.width, top + line), fill=BAND)
            draw.text((GAP, top), _wrap(band, font, block_w)[0], fill=INK, font=font)
            top += band_h
        x_name = _wrap(x_axis[0], font, columns * (cell_w + GAP))[0]
        draw.text((label_w + GAP + (columns * (cell_w + GAP) - font.getlength(x_name)) / 2, top), x_name, fill=INK,
                  font=font)
        draw.text((GAP, top + header_h - line - GAP), _wrap(y_axis[0], font, label_w - 4)[0], fill=INK, font=font)
        for c, lines in enumerate(col_labels):
            x = label_w + GAP + c * (cell_w + GAP)
            for n, text in enumerate(lines):
                draw.text((x + (cell_w - font.getlength(text)) / 2, top + line * (n + 1)), text, fill=INK, font=font)
        y = top + header_h
        for r in range(rows):
            for n, text in enumerate(row_labels[r]):
                draw.text((GAP, y + n * line), text, fill=INK, font=font)
            for c in range(columns):
                coords = tuple([c, r, *z][:len(axes)])
                image = images.get(coords) or _cell(None, (cell_w, cell_h), font)
                sheet.paste(image, (label_w + GAP + c * (cell_w + GAP) + (cell_w - image.width) // 2, y))
            y += row_hs[r] + GAP
        top += block_h
    return sheet


def save(image: Image.Image, path: str | Path, workflow: dict, sweep: dict) -> Path:
    """Write a grid as a PNG embedding the workflow and the sweep."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, pnginfo=png_info(workflow, sweep), compress_level=4)
    return path
