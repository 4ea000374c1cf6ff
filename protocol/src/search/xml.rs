//! The XML form (`PeerGroupSearchRecords`, reference 3.11), parsed with
//! roxmltree under limits: the text's size, the number of nodes (no DTDs,
//! so no entity expansion), the nesting depth and the number of clauses.

use roxmltree::{Document, Node as XmlNode, NodeType, ParsingOptions};

use super::{
    Attrib, Clause, Compare, MAX_QUERY_BYTES, MAX_QUERY_CLAUSES, MAX_QUERY_DEPTH, Node, Query,
    Value, ValueType, invalid, shown,
};
use crate::error::Error;

/// The most XML nodes (elements, texts, comments...) a query may hold.
const MAX_NODES: u32 = 8 * MAX_QUERY_CLAUSES as u32;

pub(super) fn parse(text: &str) -> Result<Query, Error> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(invalid(format!(
            "a query of {} bytes (at most {MAX_QUERY_BYTES})",
            text.len()
        )));
    }
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    let document = Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::NodesLimitReached => invalid(format!("more than {MAX_NODES} XML nodes")),
        e => invalid(format!("not well-formed XML: {e}")),
    })?;
    let root = document.root_element();
    if root.tag_name().name() != "peersearch" {
        return Err(invalid(format!(
            "the root is <{}>, not <peersearch>",
            shown(root.tag_name().name())
        )));
    }
    let children = elements(root)?;
    let [only] = children.as_slice() else {
        return Err(invalid(format!(
            "<peersearch> holds {} elements, not exactly one",
            children.len()
        )));
    };
    Query::new(node(*only, 0)?)
}

/// The element children of `parent`; text other than whitespace between
/// them breaks the schema.
fn elements<'a, 'i>(parent: XmlNode<'a, 'i>) -> Result<Vec<XmlNode<'a, 'i>>, Error> {
    let mut out = Vec::new();
    for child in parent.children() {
        match child.node_type() {
            NodeType::Element => out.push(child),
            NodeType::Text if child.text().is_none_or(|t| t.trim().is_empty()) => {}
            NodeType::Comment | NodeType::PI => {}
            _ => {
                return Err(invalid(format!(
                    "text inside <{}>",
                    parent.tag_name().name()
                )));
            }
        }
    }
    Ok(out)
}

fn node(element: XmlNode<'_, '_>, depth: usize) -> Result<Node, Error> {
    if depth > MAX_QUERY_DEPTH {
        return Err(invalid(format!("nested deeper than {MAX_QUERY_DEPTH}")));
    }
    match element.tag_name().name() {
        name @ ("and" | "or") => {
            if let Some(attribute) = element.attributes().next() {
                return Err(invalid(format!(
                    "<{name}> (at {}) takes no attribute ({})",
                    position(element),
                    shown(attribute.name())
                )));
            }
            let children = elements(element)?
                .into_iter()
                .map(|child| node(child, depth.saturating_add(1)))
                .collect::<Result<Vec<_>, _>>()?;
            if children.is_empty() {
                return Err(invalid(format!(
                    "an empty <{name}> (at {})",
                    position(element)
                )));
            }
            Ok(if name == "and" {
                Node::And(children)
            } else {
                Node::Or(children)
            })
        }
        "clause" => clause(element).map(Node::Clause),
        other => Err(invalid(format!(
            "<{}> (at {}) is not clause, and or or",
            shown(other),
            position(element)
        ))),
    }
}

/// Where `node` starts in the text, as `line L, column C` (both from 1).
fn position(node: XmlNode<'_, '_>) -> String {
    let at = node.document().text_pos_at(node.range().start);
    format!("line {}, column {}", at.row, at.col)
}

fn clause(element: XmlNode<'_, '_>) -> Result<Clause, Error> {
    clause_fields(element).map_err(|e| match e {
        Error::InvalidSearch(reason) => {
            invalid(format!("<clause> at {}: {reason}", position(element)))
        }
        Error::InvalidArg(reason) => {
            Error::InvalidArg(format!("<clause> at {}: {reason}", position(element)))
        }
        other => other,
    })
}

fn clause_fields(element: XmlNode<'_, '_>) -> Result<Clause, Error> {
    let (mut attrib, mut kind, mut compare) = (None, None, None);
    for attribute in element.attributes() {
        let value = attribute.value();
        match attribute.name() {
            "attrib" => attrib = Some(value),
            "type" => {
                kind = Some(ValueType::named(value).ok_or_else(|| {
                    invalid(format!(
                        "unknown type `{}` (string, date or int)",
                        shown(value)
                    ))
                })?);
            }
            "compare" => {
                compare = Some(
                    Compare::named(value)
                        .ok_or_else(|| invalid(format!("unknown comparison `{}` (equal, notequal, less, greater, lessorequal, greaterorequal)", shown(value))))?,
                );
            }
            other => {
                return Err(invalid(format!(
                    "<clause> takes no attribute `{}` (attrib, type, compare)",
                    shown(other)
                )));
            }
        }
    }
    let attrib = attrib.ok_or_else(|| invalid("a <clause> without attrib".into()))?;
    let kind = kind.ok_or_else(|| invalid("a <clause> without type".into()))?;
    // Its value: text only (an operator's name in it is literal text).
    let mut text = String::new();
    for child in element.children() {
        match child.node_type() {
            NodeType::Text => text.push_str(child.text().unwrap_or_default()),
            NodeType::Comment | NodeType::PI => {}
            _ => return Err(invalid("an element inside a <clause>".into())),
        }
    }
    Ok(Clause {
        attrib: Attrib::named(attrib),
        compare: compare.unwrap_or(Compare::Equal),
        value: Value::parse(kind, &text)?,
    })
}
