//! Where everything goes on the one A4 page: header, vehicle and owner, the offence,
//! the two photos, the fine with its two QR codes (pay, verify), appeal rights, footer.
//! Pure: a [`Resolution`] in, printpdf drawing operations out.

use printpdf::{
    Color, DictItem, Greyscale, Op, PaintMode, Point, Pt, Rect, TextItem, WindingOrder, XObjectId,
    XObjectTransform,
};

use super::fonts::{self, Fonts, Weight};
use super::jpeg::JpegInfo;
use super::qr::QrMatrix;
use super::wording;
use super::{Detection, Liability, Resolution, ResolutionError};

/// A4 in points.
pub const PAGE_WIDTH: f32 = 595.28;
pub const PAGE_HEIGHT: f32 = 841.89;
const MARGIN_X: f32 = 42.0;
const MARGIN_TOP: f32 = 30.0;
const CONTENT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN_X;
/// The footer's top edge, measured from the top of the page.
const FOOTER_TOP: f32 = PAGE_HEIGHT - 46.0;

/// The overview photo's box height, and how far long texts may shrink it.
const PHOTO_HEIGHT: f32 = 174.0;
const MIN_PHOTO_HEIGHT: f32 = 120.0;

const LABEL_WIDTH: f32 = 182.0;
const GAP: f32 = 6.0;
const BODY: f32 = 9.0;
const LABEL: f32 = 8.0;

/// Fixed XObject resource names of the two photos.
pub const OVERVIEW_ID: &str = "ImOverview";
pub const PLATE_ID: &str = "ImPlate";
pub const PAY_QR_ID: &str = "FmPayQr";
pub const VERIFY_QR_ID: &str = "FmVerifyQr";

const BLACK: f32 = 0.0;
const GREY: f32 = 0.35;
const RULE_GREY: f32 = 0.6;

/// Everything the layout needs besides the resolution itself.
pub struct Inputs<'a> {
    pub resolution: &'a Resolution,
    pub overview: JpegInfo,
    pub plate: JpegInfo,
    pub pay_qr: &'a QrMatrix,
    pub verify_qr: &'a QrMatrix,
}

/// The page laid out in one set of fonts.
pub struct Laid {
    pub ops: Vec<Op>,
    /// Whether the fonts have a glyph for every character set; when not, the page is
    /// laid out again in the full faces.
    pub covered: bool,
}

/// The page's drawing operations, or [`ResolutionError::PageOverflow`] when the texts
/// are too long for one page.
pub fn page_ops(inputs: &Inputs<'_>, fonts: &Fonts) -> Result<Laid, ResolutionError> {
    // Long texts first take room from the overview photo, down to a minimum height.
    let mut photo_height = PHOTO_HEIGHT;
    let mut page = body(inputs, fonts, photo_height);
    while page.y > FOOTER_TOP && photo_height > MIN_PHOTO_HEIGHT {
        photo_height = (photo_height - (page.y - FOOTER_TOP)).max(MIN_PHOTO_HEIGHT);
        page = body(inputs, fonts, photo_height);
    }
    if page.y > FOOTER_TOP {
        return Err(ResolutionError::PageOverflow {
            overflow_pt: (page.y - FOOTER_TOP).ceil() as u32,
        });
    }
    footer(&mut page, inputs.resolution);
    Ok(Laid {
        ops: page.ops,
        covered: page.covered,
    })
}

/// Everything above the footer, with the overview photo at most `photo_height` tall.
fn body<'f>(inputs: &Inputs<'_>, fonts: &'f Fonts, photo_height: f32) -> Page<'f> {
    let r = inputs.resolution;
    let country = wording::country(r.jurisdiction);
    let mut page = Page::new(fonts);

    // Header.
    page.centered(Weight::Bold, 9.0, country.country);
    page.centered(Weight::Regular, 9.0, &r.authority);
    page.y += 6.0;
    page.centered(Weight::Bold, 15.0, &format!("ПОСТАНОВЛЕНИЕ № {}", r.number));
    page.centered(
        Weight::Regular,
        9.0,
        match r.detection {
            Detection::AutomaticCamera => {
                "о наложении штрафа за правонарушение, зафиксированное специальным \
                 техническим средством, работающим в автоматическом режиме"
            }
            Detection::Officer => {
                "о наложении штрафа за правонарушение, выявленное сотрудником милиции"
            }
        },
    );
    page.y += 4.0;
    page.line(
        MARGIN_X,
        Weight::Regular,
        BODY,
        GREY,
        &format!(
            "Дата вынесения: {}",
            wording::date(r.jurisdiction.local_date(r.issued_at))
        ),
    );

    // Vehicle and owner.
    page.section("Транспортное средство и собственник");
    let fw = CONTENT_WIDTH - LABEL_WIDTH;
    page.field(
        "Государственный регистрационный знак",
        &r.plate,
        Weight::Bold,
        12.0,
        fw,
    );
    let vehicle = r.vehicle.describe();
    page.field(
        "Марка, модель",
        vehicle.as_deref().unwrap_or("не установлены"),
        Weight::Regular,
        BODY,
        fw,
    );
    page.field(
        match r.owner.liable_as {
            Liability::Owner => "Собственник (владелец)",
            Liability::NamedDriver => "Водитель (указан собственником)",
        },
        &r.owner.name,
        Weight::Bold,
        BODY,
        fw,
    );
    let address = if r.owner.address.trim().is_empty() {
        "не указан"
    } else {
        r.owner.address.as_str()
    };
    let address_label = match r.owner.liable_as {
        Liability::Owner => "Адрес собственника",
        Liability::NamedDriver => "Адрес водителя",
    };
    page.field(address_label, address, Weight::Regular, BODY, fw);

    // The offence.
    page.section("Сведения о правонарушении");
    page.field(
        "Дата и время",
        &format!(
            "{} (время местное, {})",
            wording::local_date_time(r.jurisdiction, r.offence_at),
            country.zone
        ),
        Weight::Regular,
        BODY,
        fw,
    );
    page.field("Место", &r.place.address, Weight::Regular, BODY, fw);
    if let (Some(lat), Some(lon)) = (r.place.lat_e6, r.place.lon_e6) {
        page.field(
            "Координаты",
            &format!(
                "{}, {}",
                kozomol_core::decimal_degrees(lat),
                kozomol_core::decimal_degrees(lon)
            ),
            Weight::Regular,
            BODY,
            fw,
        );
    }
    page.field(
        "Нарушение",
        wording::violation(r.violation),
        Weight::Regular,
        BODY,
        fw,
    );
    page.field(
        "Результат измерения",
        &r.measurement,
        Weight::Bold,
        BODY,
        fw,
    );
    page.field(
        "Статья",
        &format!(
            "ст. {} {} — {}",
            r.article.number, country.code, r.article.title
        ),
        Weight::Regular,
        BODY,
        fw,
    );
    match &r.device {
        Some(device) => {
            let cert = &device.certificate;
            page.field(
                "Специальное техническое средство",
                &format!(
                    "заводской № {}; свидетельство о поверке № {}, действительно с {} по {}",
                    device.serial,
                    cert.number,
                    wording::date(cert.valid_from),
                    wording::date(cert.valid_until)
                ),
                Weight::Regular,
                BODY,
                fw,
            );
        }
        // No device measured anything: the officer who saw it is the evidence.
        None => page.field(
            "Способ выявления",
            &format!(
                "непосредственно сотрудником милиции {}, нагрудный знак № {}",
                r.officer.name, r.officer.badge
            ),
            Weight::Regular,
            BODY,
            fw,
        ),
    }
    page.field(
        "Нарушение подтвердил",
        &format!("{}, нагрудный знак № {}", r.officer.name, r.officer.badge),
        Weight::Regular,
        BODY,
        fw,
    );

    // Photos: the overview left, the plate crop right.
    page.y += GAP;
    let top = page.y;
    let overview_w = 310.0;
    let side_x = MARGIN_X + overview_w + 20.0;
    let side_w = CONTENT_WIDTH - overview_w - 20.0;
    let overview_h = page.image(
        OVERVIEW_ID,
        inputs.overview,
        MARGIN_X,
        top,
        overview_w,
        photo_height,
    );
    let plate_h = page.image(PLATE_ID, inputs.plate, side_x, top, side_w, 70.0);
    let mut left = top + overview_h + 3.0;
    page.wrapped_at(
        MARGIN_X,
        &mut left,
        overview_w,
        Weight::Regular,
        LABEL,
        GREY,
        "Обзорный снимок",
    );
    let mut right = top + plate_h + 3.0;
    page.wrapped_at(
        side_x,
        &mut right,
        side_w,
        Weight::Regular,
        LABEL,
        GREY,
        "Снимок государственного регистрационного знака",
    );
    right += 4.0;
    page.wrapped_at(
        side_x,
        &mut right,
        side_w,
        Weight::Bold,
        14.0,
        BLACK,
        &r.plate,
    );
    page.y = left.max(right);

    // The fine: text left, the two QR codes right.
    page.section("Штраф");
    let qr_side = 86.0;
    let qr_gap = 12.0;
    let qr_block = 2.0 * qr_side + qr_gap;
    let value_w = CONTENT_WIDTH - LABEL_WIDTH - qr_block - GAP;
    let top = page.y;
    page.field(
        "Сумма штрафа",
        &wording::money(r.amount, r.jurisdiction),
        Weight::Bold,
        11.0,
        value_w,
    );
    if let Some(discount) = &r.discount {
        page.field(
            &format!(
                "Оплатить со скидкой {} {}",
                wording::percent(discount.percent),
                wording::term(discount.until)
            ),
            &wording::money(discount.amount, r.jurisdiction),
            Weight::Bold,
            11.0,
            value_w,
        );
    }
    page.field(
        "Срок уплаты",
        &wording::term(r.due),
        Weight::Regular,
        BODY,
        value_w,
    );
    page.field("Код платежа", &r.payment_code, Weight::Bold, 11.0, value_w);
    let qr_x = PAGE_WIDTH - MARGIN_X - qr_block;
    let mut below = top;
    for (i, (id, qr, caption)) in [
        (PAY_QR_ID, inputs.pay_qr, "Оплатить"),
        (VERIFY_QR_ID, inputs.verify_qr, "Проверить подлинность"),
    ]
    .into_iter()
    .enumerate()
    {
        let x = qr_x + i as f32 * (qr_side + qr_gap);
        page.qr(id, qr, x, top, qr_side);
        let mut y = top + qr_side + 2.0;
        page.wrapped_centered(x, &mut y, qr_side, Weight::Bold, LABEL, caption);
        below = below.max(y);
    }
    page.y = page.y.max(below);

    // Appeal.
    page.section("Порядок обжалования");
    page.field(
        "Обжаловать",
        &wording::term(r.appeal_until),
        Weight::Bold,
        BODY,
        fw,
    );
    let mut y = page.y;
    page.wrapped_at(
        MARGIN_X,
        &mut y,
        CONTENT_WIDTH,
        Weight::Regular,
        LABEL,
        BLACK,
        &r.appeal_rights,
    );
    page.y = y;

    page
}

/// The verification link and the issue time, anchored at the bottom.
fn footer(page: &mut Page<'_>, r: &Resolution) {
    let country = wording::country(r.jurisdiction);
    page.y = FOOTER_TOP;
    page.rule(0.5);
    page.y += 4.0;
    let mut y = page.y;
    page.wrapped_at(
        MARGIN_X,
        &mut y,
        CONTENT_WIDTH,
        Weight::Regular,
        7.0,
        GREY,
        &format!(
            "Проверить подлинность постановления: {}",
            r.verification_url
        ),
    );
    page.wrapped_at(
        MARGIN_X,
        &mut y,
        CONTENT_WIDTH,
        Weight::Regular,
        7.0,
        GREY,
        &format!(
            "Сформировано {} (время местное, {}). Постановление подписано электронной \
             подписью, которая хранится отдельно от файла.",
            wording::local_date_time(r.jurisdiction, r.issued_at),
            country.zone
        ),
    );
}

/// A cursor over the page: `y` is the distance of the next line's top from the top
/// edge; PDF coordinates (origin bottom-left) are computed when drawing.
struct Page<'f> {
    fonts: &'f Fonts,
    ops: Vec<Op>,
    y: f32,
    covered: bool,
}

fn leading(size: f32) -> f32 {
    size * 1.25
}

fn grey(level: f32) -> Color {
    Color::Greyscale(Greyscale::new(level, None))
}

impl<'f> Page<'f> {
    fn new(fonts: &'f Fonts) -> Self {
        Page {
            fonts,
            ops: Vec::new(),
            y: MARGIN_TOP,
            covered: true,
        }
    }

    /// One line of text whose top is at `top` (from the page's top edge).
    fn text(&mut self, x: f32, top: f32, weight: Weight, size: f32, level: f32, text: &str) {
        if text.is_empty() {
            return;
        }
        self.covered &= self.fonts.covers(weight, text);
        let baseline = PAGE_HEIGHT - top - size;
        let cursor = Op::SetTextCursor {
            pos: Point {
                x: Pt(x),
                y: Pt(baseline),
            },
        };
        let (set_font, show) = if self.fonts.programs.is_some() {
            // The prepared faces' font objects are made once per process and attached
            // to each document (`pdf::attach_prepared_fonts`), so the text is written
            // here as their glyph ids: printpdf, given the fonts, would rebuild those
            // objects from the glyphs used, for every document.
            (
                Op::Unknown {
                    key: "Tf".to_owned(),
                    value: vec![
                        DictItem::Name(fonts::font_id(weight).0.into_bytes()),
                        DictItem::Real(size),
                    ],
                },
                Op::Unknown {
                    key: "Tj".to_owned(),
                    value: vec![DictItem::String {
                        data: self.fonts.glyph_codes(weight, text),
                        literal: false,
                    }],
                },
            )
        } else {
            (
                Op::SetFont {
                    font: fonts::handle(weight),
                    size: Pt(size),
                },
                Op::ShowText {
                    items: vec![TextItem::Text(text.to_owned())],
                },
            )
        };
        self.ops.extend([
            Op::SetFillColor { col: grey(level) },
            Op::StartTextSection,
            set_font,
            cursor,
            show,
            Op::EndTextSection,
        ]);
    }

    /// One unwrapped line at the cursor.
    fn line(&mut self, x: f32, weight: Weight, size: f32, level: f32, text: &str) {
        self.text(x, self.y, weight, size, level, text);
        self.y += leading(size);
    }

    /// Wrapped text centred on the content width.
    fn centered(&mut self, weight: Weight, size: f32, text: &str) {
        let mut y = self.y;
        self.wrapped_centered(MARGIN_X, &mut y, CONTENT_WIDTH, weight, size, text);
        self.y = y;
    }

    fn wrapped_centered(
        &mut self,
        x: f32,
        y: &mut f32,
        width: f32,
        weight: Weight,
        size: f32,
        text: &str,
    ) {
        for line in self.fonts.wrap(weight, size, text, width) {
            let w = self.fonts.width(weight, size, &line);
            self.text(x + (width - w) / 2.0, *y, weight, size, BLACK, &line);
            *y += leading(size);
        }
    }

    /// Wrapped text in a column starting at `x`; advances `y`.
    #[allow(clippy::too_many_arguments)]
    fn wrapped_at(
        &mut self,
        x: f32,
        y: &mut f32,
        width: f32,
        weight: Weight,
        size: f32,
        level: f32,
        text: &str,
    ) {
        for line in self.fonts.wrap(weight, size, text, width) {
            self.text(x, *y, weight, size, level, &line);
            *y += leading(size);
        }
    }

    /// A label (grey, left column) and its value (right column), both wrapped.
    fn field(&mut self, label: &str, value: &str, weight: Weight, size: f32, value_width: f32) {
        let top = self.y;
        let mut label_y = top + (size - LABEL).max(0.0);
        self.wrapped_at(
            MARGIN_X,
            &mut label_y,
            LABEL_WIDTH - GAP,
            Weight::Regular,
            LABEL,
            GREY,
            label,
        );
        let mut value_y = top;
        self.wrapped_at(
            MARGIN_X + LABEL_WIDTH,
            &mut value_y,
            value_width,
            weight,
            size,
            BLACK,
            value,
        );
        self.y = label_y.max(value_y) + 1.5;
    }

    /// A bold heading over a thin rule.
    fn section(&mut self, title: &str) {
        self.y += GAP;
        self.line(MARGIN_X, Weight::Bold, 10.5, BLACK, title);
        self.rule(0.5);
        self.y += 4.0;
    }

    /// A horizontal rule across the content width at the cursor.
    fn rule(&mut self, thickness: f32) {
        self.ops.extend([
            Op::SetFillColor {
                col: grey(RULE_GREY),
            },
            filled(
                MARGIN_X,
                PAGE_HEIGHT - self.y - thickness,
                CONTENT_WIDTH,
                thickness,
            ),
        ]);
        self.y += thickness;
    }

    /// Draws an image XObject scaled to fit a `box_w` × `box_h` box whose top-left
    /// corner is (`x`, `top`), keeping its aspect ratio; returns the height used.
    fn image(&mut self, id: &str, info: JpegInfo, x: f32, top: f32, box_w: f32, box_h: f32) -> f32 {
        let (iw, ih) = (f32::from(info.width), f32::from(info.height));
        let scale = (box_w / iw).min(box_h / ih);
        let (w, h) = (iw * scale, ih * scale);
        // The image space is the unit square: scale straight to points.
        self.place(id, x, PAGE_HEIGHT - top - h, w, h);
        h
    }

    /// A QR code (the form XObject `id`, one unit a module) with its quiet zone in a
    /// `side`-point square, top-left at (`x`, `top`).
    fn qr(&mut self, id: &str, qr: &QrMatrix, x: f32, top: f32, side: f32) {
        let scale = side / qr.modules() as f32;
        self.place(id, x, PAGE_HEIGHT - top - side, scale, scale);
    }

    /// Draws the XObject `id` with its space scaled by (`scale_x`, `scale_y`) and its
    /// origin at (`x`, `y`) in PDF coordinates.
    fn place(&mut self, id: &str, x: f32, y: f32, scale_x: f32, scale_y: f32) {
        self.ops.push(Op::UseXobject {
            id: XObjectId(id.to_owned()),
            transform: XObjectTransform {
                translate_x: Some(Pt(x)),
                translate_y: Some(Pt(y)),
                scale_x: Some(scale_x),
                scale_y: Some(scale_y),
                no_auto_scale: true,
                ..XObjectTransform::default()
            },
        });
    }
}

fn filled(x: f32, y: f32, width: f32, height: f32) -> Op {
    Op::DrawRectangle {
        rectangle: Rect {
            x: Pt(x),
            y: Pt(y),
            width: Pt(width),
            height: Pt(height),
            mode: Some(PaintMode::Fill),
            winding_order: Some(WindingOrder::NonZero),
        },
    }
}
