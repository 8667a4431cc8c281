#![allow(clippy::unwrap_used)]
use super::*;
use crate::delivery::payload::Payload;
use bytes::Bytes;

#[test]
fn single_answers_have_centrifugo_shapes() {
    let ok: Reply = Ok(RawValue::from_string(r#"{"offset":1,"epoch":"e"}"#.into()).unwrap());
    assert_eq!(single(&ok), r#"{"result":{"offset":1,"epoch":"e"}}"#);
    assert_eq!(single(&Ok(empty())), r#"{"result":{}}"#);
    let err: Reply = Err(ApiError::Unrecoverable);
    assert_eq!(
        single(&err),
        r#"{"error":{"code":112,"message":"unrecoverable position"}}"#
    );
    let err: Reply = Err(ApiError::BadRequest("channel is required"));
    assert_eq!(
        single(&err),
        r#"{"error":{"code":107,"message":"bad request: channel is required"}}"#
    );
}

#[test]
fn statuses_and_codes() {
    let broker = ApiError::Broker(BrokerError::Unavailable("down".into()));
    assert_eq!(broker.code(), 100);
    assert_eq!(broker.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        broker.body(),
        r#"{"code":100,"message":"broker unavailable: down"}"#
    );
    assert_eq!(ApiError::Decode("x".into()).status(), 400);
    assert_eq!(ApiError::UnknownMethod("x".into()).status(), 404);
    assert_eq!(ApiError::UnknownMethod("x".into()).code(), 104);
    assert_eq!(ApiError::BadRequest("x").status(), 200);
}

#[test]
fn batch_replies_are_keyed_by_method_and_not_wrapped() {
    let replies = [
        batch_reply("publish", &Ok(empty())),
        batch_reply("presence_stats", &Err(ApiError::BadRequest("x"))),
    ];
    assert_eq!(
        batch_body(&replies),
        r#"{"replies":[{"publish":{}},{"error":{"code":107,"message":"bad request: x"}}]}"#
    );
    assert_eq!(batch_body(&[]), r#"{"replies":[]}"#);
    let b: Batch<'_> = decode(
        br#"{"commands":[{"publish":{"channel":"a","data":1}},{"info":{}}],"parallel":false}"#,
    )
    .unwrap();
    assert_eq!(b.commands.len(), 2);
    assert_eq!(
        b.commands[0]["publish"].get(),
        r#"{"channel":"a","data":1}"#
    );
}

#[test]
fn legacy_streams_split_and_join_without_a_trailing_newline() {
    let body = b"{\"method\":\"publish\",\"params\":{\"channel\":\"a\",\"data\":{}}}\n{\"id\":7,\"method\":5,\"params\":{\"channel\":\"a\"}}\n{\"method\":\"INFO\"}\n";
    let commands = split_legacy(body).unwrap();
    let names: Vec<_> = commands.iter().map(|c| c.method_name()).collect();
    assert_eq!(
        names,
        [
            Some("publish".into()),
            Some("presence_stats".into()),
            Some("info".into())
        ]
    );
    assert_eq!(commands[1].id, Some(7));
    assert_eq!(commands[1].params(), br#"{"channel":"a"}"#);
    assert_eq!(commands[2].params(), b"{}");
    let lines = [
        legacy_reply(None, &Ok(empty())),
        legacy_reply(Some(7), &Err(ApiError::UnknownMethod("not found".into()))),
    ];
    assert_eq!(
        legacy_body(&lines),
        "{\"result\":{}}\n{\"id\":7,\"error\":{\"code\":104,\"message\":\"method not found: not found\"}}"
    );
    assert!(split_legacy(b"{\"method\":\"publish\"}\n{broken").is_err());
    assert!(split_legacy(b"").unwrap().is_empty());
    let odd = split_legacy(br#"{"method":99}{"method":true}"#).unwrap();
    assert_eq!(odd[0].method_name(), None);
    assert_eq!(odd[1].method_name(), None);
}

#[test]
fn data_is_kept_byte_for_byte_and_shares_the_body() {
    #[derive(serde::Deserialize)]
    struct P<'a> {
        #[serde(borrow)]
        data: Option<&'a RawValue>,
        #[serde(default)]
        b64data: String,
    }
    let body = Bytes::from_static(b"{\"data\": {\"b\" : [1, 2.50, \"\\u00e9\"]} , \"x\":1}");
    let p: P<'_> = decode(&body).unwrap();
    let payload = payload_of(&Data::new(p.data, &p.b64data), &body).unwrap();
    let Payload::Text(text) = payload else {
        panic!("not text")
    };
    assert_eq!(&text[..], br#"{"b" : [1, 2.50, "\u00e9"]}"#);
    // A slice of the body, not a copy.
    assert_eq!(text.as_ptr(), body[9..].as_ptr());

    let body = Bytes::from_static(br#"{"b64data":"AP8=","data":"ignored"}"#);
    let p: P<'_> = decode(&body).unwrap();
    let payload = payload_of(&Data::new(p.data, &p.b64data), &body).unwrap();
    assert_eq!(payload, Payload::Binary(Bytes::from_static(&[0, 255])));

    let body = Bytes::from_static(br#"{"b64data":"!!"}"#);
    let p: P<'_> = decode(&body).unwrap();
    assert!(matches!(
        payload_of(&Data::new(p.data, &p.b64data), &body),
        Err(ApiError::BadRequest(_))
    ));
    let p: P<'_> = decode(b"").unwrap();
    assert!(payload_of(&Data::new(p.data, &p.b64data), &body).is_err());
}

#[test]
fn bodies_that_are_not_the_shape_fail_to_decode() {
    #[derive(Debug, serde::Deserialize)]
    struct P {
        #[serde(default)]
        #[allow(dead_code)]
        channel: String,
    }
    assert!(decode::<P>(b"{\"channel\":\"a\",\"unknown\":[1]}").is_ok());
    assert!(decode::<P>(b"  \n").is_ok());
    let e = decode::<P>(b"{\"channel\":5}").unwrap_err();
    assert_eq!(e.code(), 107);
    assert!(
        e.to_string().starts_with("bad request: invalid type"),
        "{e}"
    );
    assert!(matches!(decode::<P>(b"{nope"), Err(ApiError::Decode(_))));
}
