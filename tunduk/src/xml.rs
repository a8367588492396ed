//! Writing XML with every value escaped, and reading it by namespace URI (never by
//! prefix) on top of `roxmltree`.

pub use roxmltree::Node;

pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const XROAD_NS: &str = "http://x-road.eu/xsd/xroad.xsd";
pub const IDENTIFIERS_NS: &str = "http://x-road.eu/xsd/identifiers";
pub const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// The target namespace of `vehicles-service.wsdl` (its spelling, "seccurity", is the
/// contract's).
pub const VEHICLES_NS: &str = "http://tunduk-seccurity-infocom.x-road.fi/producer";

/// Escapes a value for element text or a quoted attribute. Characters XML 1.0 cannot
/// carry at all (most C0 controls) become U+FFFD.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// An element to write: a name, an optional default-namespace declaration, and text,
/// children, nothing, or `xsi:nil="true"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    name: String,
    namespace: Option<String>,
    content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Content {
    Empty,
    Nil,
    Text(String),
    Children(Vec<Element>),
}

impl Element {
    /// An empty element; `name` is a local name chosen by code, never by input.
    pub fn new(name: &str) -> Self {
        Element {
            name: name.to_owned(),
            namespace: None,
            content: Content::Empty,
        }
    }

    pub fn text(name: &str, value: &str) -> Self {
        Element {
            content: Content::Text(value.to_owned()),
            ..Element::new(name)
        }
    }

    /// `<name xsi:nil="true"/>`: a nillable element with no value.
    pub fn nil(name: &str) -> Self {
        Element {
            content: Content::Nil,
            ..Element::new(name)
        }
    }

    /// Text when there is a value, nil when there is none.
    pub fn optional(name: &str, value: Option<&str>) -> Self {
        match value {
            Some(value) => Element::text(name, value),
            None => Element::nil(name),
        }
    }

    /// Declares `namespace` as the default namespace here, so this element and
    /// its descendants are in it.
    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    pub fn child(mut self, child: Element) -> Self {
        match &mut self.content {
            Content::Children(children) => children.push(child),
            _ => self.content = Content::Children(vec![child]),
        }
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    pub fn write(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        if let Some(namespace) = &self.namespace {
            out.push_str(" xmlns=\"");
            out.push_str(&escape(namespace));
            out.push('"');
        }
        match &self.content {
            Content::Empty => out.push_str("/>"),
            Content::Nil => {
                out.push_str(" xmlns:xsi=\"");
                out.push_str(XSI_NS);
                out.push_str("\" xsi:nil=\"true\"/>");
            }
            Content::Text(text) => {
                out.push('>');
                out.push_str(&escape(text));
                self.close(out);
            }
            Content::Children(children) => {
                out.push('>');
                for child in children {
                    child.write(out);
                }
                self.close(out);
            }
        }
    }

    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn close(&self, out: &mut String) {
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

/// Whether `node` is the element `{namespace}local`.
pub fn is(node: Node<'_, '_>, namespace: &str, local: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == local
        && node.tag_name().namespace() == Some(namespace)
}

/// The element children of `node` named `{namespace}local`.
pub fn children<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    namespace: &'a str,
    local: &'a str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    node.children().filter(move |n| is(*n, namespace, local))
}

/// The first element child of `node` named `{namespace}local`.
pub fn child<'a, 'input>(
    node: Node<'a, 'input>,
    namespace: &str,
    local: &str,
) -> Option<Node<'a, 'input>> {
    node.children().find(|n| is(*n, namespace, local))
}

/// All text inside `node`, concatenated.
pub fn text(node: Node<'_, '_>) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect()
}

/// Whether `node` carries `xsi:nil="true"`.
pub fn is_nil(node: Node<'_, '_>) -> bool {
    matches!(
        node.attribute((XSI_NS, "nil")).map(str::trim),
        Some("true") | Some("1")
    )
}

/// Parses a document without DTDs (so no entity expansion), after dropping a BOM.
pub fn parse(text: &str) -> Result<roxmltree::Document<'_>, roxmltree::Error> {
    roxmltree::Document::parse(text.strip_prefix('\u{FEFF}').unwrap_or(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_special_character() {
        assert_eq!(
            escape(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;"
        );
        assert_eq!(escape("a\u{1}b\tc"), "a\u{FFFD}b\tc");
        assert_eq!(escape("Бишкек"), "Бишкек");
    }

    #[test]
    fn writes_nested_elements_and_nil() {
        let element = Element::new("root")
            .in_namespace("urn:x")
            .child(Element::text("a", "1 < 2"))
            .child(Element::nil("b"))
            .child(Element::optional("c", Some("&")));
        let xml = element.to_xml();
        assert_eq!(
            xml,
            format!(
                "<root xmlns=\"urn:x\"><a>1 &lt; 2</a><b xmlns:xsi=\"{XSI_NS}\" xsi:nil=\"true\"/><c>&amp;</c></root>"
            )
        );
        let doc = parse(&xml).expect("well-formed");
        let root = doc.root_element();
        assert_eq!(text(child(root, "urn:x", "a").expect("a")), "1 < 2");
        assert!(is_nil(child(root, "urn:x", "b").expect("b")));
    }

    #[test]
    fn matches_by_namespace_not_prefix() {
        let xml = r#"<p:root xmlns:p="urn:x" xmlns:q="urn:x" xmlns:r="urn:y"><q:a>1</q:a><r:a>2</r:a></p:root>"#;
        let doc = parse(xml).expect("well-formed");
        let root = doc.root_element();
        let texts: Vec<String> = children(root, "urn:x", "a").map(text).collect();
        assert_eq!(texts, ["1"]);
    }

    #[test]
    fn refuses_dtds() {
        let xml = r#"<!DOCTYPE a [<!ENTITY e "boom">]><a>&e;</a>"#;
        assert!(parse(xml).is_err());
    }
}
