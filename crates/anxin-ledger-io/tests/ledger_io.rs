//! The ledger's import and export as an office uses them: Excel's files in, a dry run that
//! names every bad row, the same file again changing nothing, the ledger out and back.

use anxin_core::family::Channel;
use anxin_core::geo::Coordinates;
use anxin_core::ids::{DeviceId, ElderId, ResponderId, StationId, Timestamp};
use anxin_core::registry::{Contact, Device, Elder, ElderProfile, Registry, Responder, Station, TravelMode};
use anxin_ledger_io::{
    check, check_character, code, export, read_table, read_table_with_progress, Encoding, Entity, Field, Format, Kind,
    Mapping, ReadError, Report, Status, Table,
};

/// A valid ID number for someone born on `birth` (YYYYMMDD) in Kunming's Wuhua district.
fn id_number(birth: &str, sequence: &str) -> String {
    let first17 = format!("530102{birth}{sequence}");
    let check = check_character(first17.as_bytes().try_into().unwrap());
    format!("{first17}{check}")
}

fn station(id: &str, lat: f64, lon: f64) -> Station {
    Station {
        id: StationId::parse(id).unwrap(),
        name: format!("{id} 社区养老服务站"),
        position: Coordinates::new(lat, lon).unwrap(),
        phone: Some("0871-6500000".into()),
        service_circle_min: Some(15),
        zone: Default::default(),
    }
}

fn contact(name: &str, relation: &str, phone: &str) -> Contact {
    Contact { name: name.into(), relation: relation.into(), phone: phone.into(), ..Contact::default() }
}

/// Two stations, two elders (one with contacts and quiet settings the files never carry), a
/// device with a SIM card, a responder out on duty with a phone fix.
fn ledger() -> Registry {
    let mut quiet = contact("李娜", "女儿", "13900001111");
    quiet.id = "daughter".into();
    quiet.device_news = false;
    Registry {
        stations: vec![station("wuhua-1", 25.04, 102.71), station("panlong-2", 25.07, 102.73)],
        elders: vec![
            Elder {
                id: ElderId::parse("e1").unwrap(),
                name: "王秀英".into(),
                address: "五华区华山南路 12 号 3 单元 401".into(),
                home: Coordinates::new(25.0405, 102.7102).unwrap(),
                phone: Some("13800000001".into()),
                notes: "耳背，说话要大声".into(),
                profile: ElderProfile {
                    birth_year: Some(1941),
                    lives_alone: Some(true),
                    conditions: vec!["高血压".into(), "糖尿病".into()],
                    medications: vec!["二甲双胍".into()],
                    mobility: "拄拐".into(),
                    language: "昆明话".into(),
                    door_notes: "钥匙在 402 邻居家".into(),
                    contacts: vec![quiet, contact("李强", "儿子", "13900002222")],
                    station_id: Some(StationId::parse("wuhua-1").unwrap()),
                    id_number: Some(id_number("19410305", "002")),
                    schedule: Default::default(),
                    need_level: None,
                },
            },
            Elder {
                id: ElderId::parse("e2").unwrap(),
                name: "张建国".into(),
                address: "盘龙区北京路 88 号".into(),
                home: Coordinates::new(25.071, 102.731).unwrap(),
                phone: None,
                notes: String::new(),
                profile: ElderProfile::default(),
            },
        ],
        devices: vec![Device {
            id: DeviceId::parse("xs-0001").unwrap(),
            elder_id: ElderId::parse("e1").unwrap(),
            model: None,
            sim: Some("+86 138-0000-5555".into()),
        }],
        responders: vec![Responder {
            id: ResponderId::parse("r1").unwrap(),
            name: "赵敏".into(),
            station_id: StationId::parse("wuhua-1").unwrap(),
            phone: Some("13700000001".into()),
            position: Coordinates::new(25.041, 102.712).unwrap(),
            on_duty: true,
            mode: TravelMode::Ebike,
            skills: vec!["first_aid".into()],
            position_at: Some(Timestamp(1_764_000_000_000)),
            token_sha256: Some("ab".repeat(32)),
            provider_id: None,
        }],
        staff: vec![],
        providers: vec![],
    }
}

fn utf8_csv(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

fn gbk_csv(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
    assert!(!unmappable, "the test's text is all in GBK");
    bytes.into_owned()
}

fn run(table: &Table, mapping: &Mapping, ledger: &Registry) -> Report {
    check(table, mapping, ledger, &mut |_, _| {}).expect("the mapping fits")
}

fn zh_mapping() -> Mapping {
    serde_json::from_str(include_str!("data/elders-zh.mapping.json")).expect("the saved mapping parses")
}

/// Elders as a civil-affairs office's Excel sheet has them, Chinese headers.
fn zh_elders_csv() -> String {
    let header = "编号,姓名,地址,经度,纬度,联系电话,身份证号,所属站点,出生年份,是否独居,慢性病,用药,紧急联系人1,关系1,紧急联系人1电话,紧急联系人2,关系2,紧急联系人2电话";
    let rows = [
        format!("wh-1001,刘桂兰,五华区翠湖南路 5 号,102.7050,25.0480,13811110001,{},wuhua-1,1938,是,高血压、冠心病,阿司匹林；硝酸甘油,刘伟,儿子,13911110001,刘芳,女儿,13911110002", id_number("19380612", "014")),
        "wh-1002,陈德明,盘龙区白塔路 20 号,102.7301,25.0612,13811110002,,panlong-2,1945,否,,,陈静,女儿,13911110003,,,".to_string(),
    ];
    format!("{header}\n{}\n", rows.join("\n"))
}

#[test]
fn gbk_csv_is_detected_and_a_chinese_mapping_reads_it() {
    let table = read_table(&gbk_csv(&zh_elders_csv()), Format::Csv, Encoding::Auto, None).unwrap();
    assert_eq!(table.encoding, Some(Encoding::Gbk), "not UTF-8, so GBK");
    assert_eq!(table.headers[1], "姓名");
    let report = run(&table, &zh_mapping(), &ledger());
    assert_eq!(report.problems, vec![]);
    assert_eq!((report.new, report.changed, report.unchanged), (2, 0, 0));
    let Entity::Elder(liu) = &report.rows[0].entity else { panic!("an elder") };
    assert_eq!(liu.name, "刘桂兰");
    assert_eq!((liu.home.lat(), liu.home.lon()), (25.048, 102.705));
    assert_eq!(liu.profile.conditions, ["高血压", "冠心病"]);
    assert_eq!(liu.profile.medications, ["阿司匹林", "硝酸甘油"], "；separates a list too");
    assert_eq!(liu.profile.lives_alone, Some(true));
    assert_eq!(liu.profile.station_id.as_ref().map(StationId::as_str), Some("wuhua-1"));
    assert_eq!(liu.profile.contacts.len(), 2);
    assert_eq!(liu.profile.contacts[1].relation, "女儿");
    assert_eq!(liu.profile.contacts[1].channel, Channel::Sms);
    let Entity::Elder(chen) = &report.rows[1].entity else { panic!("an elder") };
    assert_eq!(chen.profile.contacts.len(), 1, "an empty second contact is no contact");
    assert_eq!(chen.profile.id_number, None);
    assert_eq!(report.rows[1].row, 3);
}

#[test]
fn a_declared_encoding_wins() {
    let gbk = gbk_csv(&zh_elders_csv());
    let table = read_table(&gbk, Format::Csv, Encoding::Gbk, None).unwrap();
    assert_eq!(table.encoding, Some(Encoding::Gbk));
    assert_eq!(table.rows[0].get(1), "刘桂兰");
    assert!(matches!(read_table(&gbk, Format::Csv, Encoding::Utf8, None), Err(ReadError::NotUtf8 { .. })));
    // UTF-8 declared as GBK reads as GBK: wrong characters, but the declaration is obeyed.
    let utf8 = utf8_csv(&zh_elders_csv());
    let misread = read_table(&utf8, Format::Csv, Encoding::Gbk, None);
    assert!(misread.map_or(true, |t| t.encoding == Some(Encoding::Gbk) && t.headers[1] != "姓名"));
    let utf16 = [0xFF, 0xFE, b'i', 0, b'd', 0];
    assert!(matches!(read_table(&utf16, Format::Csv, Encoding::Auto, None), Err(ReadError::Utf16)));
}

#[test]
fn a_utf8_byte_order_mark_is_read_and_dropped() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(zh_elders_csv().as_bytes());
    for declared in [Encoding::Auto, Encoding::Utf8] {
        let table = read_table(&bytes, Format::Csv, declared, None).unwrap();
        assert_eq!(table.encoding, Some(Encoding::Utf8));
        assert_eq!(table.headers[0], "编号", "the mark is not part of the first header");
        assert_eq!(run(&table, &zh_mapping(), &ledger()).new, 2);
    }
    let plain = read_table(zh_elders_csv().as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    assert_eq!(plain.encoding, Some(Encoding::Utf8), "valid UTF-8 without a mark is UTF-8");
}

#[test]
fn row_numbers_are_the_spreadsheets_even_past_blank_lines_and_cells_over_two_lines() {
    // Excel shows: 1 header, 2 e1, 3 empty, 4 e2 (its notes over two lines, one row), 5 empty
    // cells only, 6 e3.
    for newline in ["\n", "\r\n"] {
        let csv = "id,name,notes\ne1,a,x\n\ne2,b,\"line one\nline two\"\n,,\ne3,c,y".replace('\n', newline);
        let table = read_table(csv.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
        let numbers: Vec<usize> = table.rows.iter().map(|r| r.number()).collect();
        assert_eq!(numbers, [2, 4, 6], "lines end in {newline:?}");
        assert_eq!(table.header_row, 1);
        assert_eq!(table.rows[1].get(2), format!("line one{newline}line two"));
    }
}

/// An XLSX workbook as Excel would hold the office's sheet: a decoy first sheet, numbers as
/// numbers (whole ones too), a date, an empty row.
fn elders_xlsx() -> Vec<u8> {
    use rust_xlsxwriter::{ExcelDateTime, Format as CellFormat, Workbook};
    let mut book = Workbook::new();
    book.add_worksheet().set_name("说明").unwrap().write_string(0, 0, "填表说明").unwrap();
    let sheet = book.add_worksheet().set_name("老人").unwrap();
    for (col, h) in ["编号", "姓名", "地址", "经度", "纬度", "联系电话", "出生年份", "登记日期"].iter().enumerate()
    {
        sheet.write_string(0, col as u16, *h).unwrap();
    }
    let date = CellFormat::new().set_num_format("yyyy-mm-dd");
    sheet.write_string(1, 0, "wh-2001").unwrap();
    sheet.write_string(1, 1, "周玉珍").unwrap();
    sheet.write_string(1, 2, "五华区文林街 3 号").unwrap();
    sheet.write_number(1, 3, 102.7033).unwrap();
    sheet.write_number(1, 4, 25.0561).unwrap();
    sheet.write_number(1, 5, 13811112222.0).unwrap();
    sheet.write_number(1, 6, 1940.0).unwrap();
    sheet.write_datetime_with_format(1, 7, ExcelDateTime::from_ymd(2024, 3, 15).unwrap(), &date).unwrap();
    // Row 3 is left empty; row 4 has no position.
    sheet.write_string(3, 0, "wh-2002").unwrap();
    sheet.write_string(3, 1, "孙福").unwrap();
    sheet.write_string(3, 2, "五华区钱局街 7 号").unwrap();
    book.save_to_buffer().unwrap()
}

#[test]
fn xlsx_whole_numbers_print_without_a_fraction_dates_as_iso_and_rows_keep_their_numbers() {
    let bytes = elders_xlsx();
    let table = read_table(&bytes, Format::Xlsx, Encoding::Auto, Some("老人")).unwrap();
    assert_eq!(table.encoding, None);
    assert_eq!(table.headers, ["编号", "姓名", "地址", "经度", "纬度", "联系电话", "出生年份", "登记日期"]);
    let first = &table.rows[0];
    assert_eq!((first.number(), first.get(3), first.get(5), first.get(6)), (2, "102.7033", "13811112222", "1940"));
    assert_eq!(first.get(7), "2024-03-15");
    assert_eq!(table.rows[1].number(), 4, "the empty row 3 is skipped, not renumbered");

    let first_sheet = read_table(&bytes, Format::Xlsx, Encoding::Auto, None).unwrap();
    assert_eq!(first_sheet.headers, ["填表说明"], "no sheet named: the first");
    assert!(matches!(read_table(&bytes, Format::Xlsx, Encoding::Auto, Some("x")), Err(ReadError::NoSuchSheet(_))));

    let mut mapping = zh_mapping();
    mapping.columns.retain(|f, _| {
        matches!(f, Field::Id | Field::Name | Field::Address | Field::HomeLat | Field::HomeLon | Field::Phone)
    });
    mapping.columns.insert(Field::BirthYear, "出生年份".into());
    let report = run(&table, &mapping, &ledger());
    assert_eq!(report.new, 1);
    let Entity::Elder(zhou) = &report.rows[0].entity else { panic!("an elder") };
    assert_eq!((zhou.phone.as_deref(), zhou.profile.birth_year), (Some("13811112222"), Some(1940)));
    assert_eq!(report.problems.len(), 1);
    assert_eq!((report.problems[0].row, report.problems[0].code), (4, code::MISSING_HOME));
    assert_eq!(report.problems[0].column.as_deref(), Some("纬度"));
}

#[test]
fn a_mapping_names_the_headers_the_file_lacks_and_the_fields_its_kind_lacks() {
    let table = read_table(zh_elders_csv().as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let mut mapping = zh_mapping();
    mapping.columns.insert(Field::DoorNotes, "门禁说明".into());
    mapping.columns.insert(Field::OnDuty, "在岗".into());
    mapping.columns.remove(&Field::HomeLon);
    let error = mapping.check(&table).unwrap_err();
    assert_eq!(error.missing_headers, ["门禁说明", "在岗"]);
    assert_eq!(error.unknown_fields, [Field::OnDuty]);
    assert_eq!(error.unmapped_required, [Field::HomeLon], "a latitude needs its longitude");
    assert!(check(&table, &mapping, &ledger(), &mut |_, _| {}).is_err());
    assert!(error.to_string().contains("门禁说明"));

    let json = serde_json::to_string(&Mapping::default_for(Kind::Devices)).unwrap();
    assert_eq!(json, r#"{"kind":"devices","columns":{"id":"id","elder_id":"elder_id","model":"model","sim":"sim"}}"#);
    let unknown = r#"{"kind":"devices","columns":{"serial":"序列号"}}"#;
    assert!(serde_json::from_str::<Mapping>(unknown).is_err(), "an unknown field name is refused");
}

/// (row, code) pairs of a report, in order.
fn codes(report: &Report) -> Vec<(usize, &'static str)> {
    report.problems.iter().map(|p| (p.row, p.code)).collect()
}

#[test]
fn every_bad_elder_row_is_listed_with_each_reason_and_its_row() {
    let good_id = id_number("19450101", "021");
    let mut bad_check = id_number("19450101", "031");
    let last = if bad_check.ends_with('1') { '2' } else { '1' };
    bad_check.replace_range(17.., &last.to_string());
    let csv = [
        "id,name,address,home_lat,home_lon,phone,station_id,id_number,birth_year,lives_alone,contact1_name,contact1_phone,contact1_channel".to_string(),
        format!("n1,甲,地址1,25.01,102.7,13600000001,wuhua-1,{good_id},1945,是,,,"), // 2 fine
        "n2,乙,地址2,,102.7,,,,,,,,".into(),                                         // 3 missing_home
        "n3,丙,地址3,25.02,102.7,,guandu-9,,,,,,".into(),                           // 4 unknown_station
        "n4,丁,地址4,25.03,102.7,138 0000 0001,,,,,,,".into(),                        // 5 duplicate_phone (ledger's e1)
        "n5,戊,地址5,25.04,102.7,13600000001,,,,,,,".into(),                          // 6 duplicate_phone (row 2)
        format!("n6,己,地址6,25.05,102.7,,,{bad_check},,,,,"),                        // 7 bad_id_number
        "n1,庚,地址7,25.06,102.7,,,,,,,,".into(),                                     // 8 duplicate_id
        "n8,辛,地址8,95,102.7,,,,,,,,".into(),                                        // 9 bad_coordinates
        "n9,壬,地址9,0,0,,,,,,,,".into(),                                             // 10 bad_coordinates (0, 0)
        "老人10,癸,地址10,25.07,102.7,,,,,,,,".into(),                                // 11 bad_id
        "n11,子,地址11,25.08,102.7,,,,一九四五,,,,".into(),                           // 12 bad_number
        "n12,丑,地址12,25.09,102.7,,,,,也许,,,".into(),                               // 13 bad_value
        "n13,,地址13,25.10,102.7,,,,,,,,".into(),                                     // 14 missing_field
        "n14,寅,地址14,,,,,11010519491231002,,,,,".into(),                            // 15 missing_home and bad_id_number
        "n15,卯,地址15,25.11,abc,,,,,,李四,,飞鸽".into(),                              // 16 bad_number, missing_field, bad_value
        "n16,辰,地址16,25.12,102.7,,,,,,李五,13500000000,电话".into(),                // 17 fine
    ]
    .join("\r\n");
    let table = read_table(csv.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let mut mapping = Mapping::default_for(Kind::Elders);
    mapping.columns.retain(|_, header| table.column(header).is_some());
    let report = run(&table, &mapping, &ledger());
    assert_eq!(
        codes(&report),
        [
            (3, code::MISSING_HOME),
            (4, code::UNKNOWN_STATION),
            (5, code::DUPLICATE_PHONE),
            (6, code::DUPLICATE_PHONE),
            (7, code::BAD_ID_NUMBER),
            (8, code::DUPLICATE_ID),
            (9, code::BAD_COORDINATES),
            (10, code::BAD_COORDINATES),
            (11, code::BAD_ID),
            (12, code::BAD_NUMBER),
            (13, code::BAD_VALUE),
            (14, code::MISSING_FIELD),
            (15, code::MISSING_HOME),
            (15, code::BAD_ID_NUMBER),
            (16, code::BAD_NUMBER),
            (16, code::MISSING_FIELD),
            (16, code::BAD_VALUE),
        ]
    );
    let ok: Vec<usize> = report.rows.iter().map(|r| r.row).collect();
    assert_eq!(ok, [2, 17], "a row with a problem is not among the good ones");
    assert_eq!(report.bad_rows(), 14);
    let Entity::Elder(n16) = &report.rows[1].entity else { panic!("an elder") };
    assert_eq!(n16.profile.contacts[0].channel, Channel::Voice, "电话 is a voice call");
    for p in &report.problems {
        assert!(!p.message.is_empty() && !p.message_zh.is_empty(), "{p:?} says what is wrong in both languages");
    }
    let phone = &report.problems[2];
    assert_eq!(phone.column.as_deref(), Some("phone"));
    assert!(phone.message.contains("e1") && phone.message.contains("ledger"), "{}", phone.message);
    assert!(report.problems[3].message.contains("row 2"), "{}", report.problems[3].message);
    assert!(report.problems[5].message.contains("row 2"), "the duplicate id names the first row");
}

#[test]
fn devices_stations_and_responders_have_their_own_problems() {
    let ledger = ledger();
    let devices = "id,elder_id\nxs-0002,e2\ndev/1,e1\nxs-0003,e99\nxs-0002,e1\nxs-0001,\n";
    let mut table = read_table(devices.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let report = run(&table.clone(), &Mapping::default_for_file(Kind::Devices, &mut table), &ledger);
    assert_eq!(
        codes(&report),
        [(3, code::BAD_ID), (4, code::UNKNOWN_ELDER), (5, code::DUPLICATE_ID), (6, code::MISSING_FIELD)]
    );
    assert_eq!(report.new, 1);

    let stations =
        "id,name,lat,lon,phone,service_circle_min,zone\nguandu-3,官渡,25.02,102.75,,,\nx,无坐标,,,,,\ny,圈,25,102.7,,0,\n\
         z,区,25,102.7,,,8192\nw,西区,25,102.7,,,7\n";
    let table = read_table(stations.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let report = run(&table, &Mapping::default_for(Kind::Stations), &ledger);
    assert_eq!(codes(&report), [(3, code::MISSING_POSITION), (4, code::BAD_NUMBER), (5, code::BAD_NUMBER)]);
    let mut zoned = ledger.clone();
    report.apply_to(&mut zoned);
    let zone_of = |id: &str| zoned.stations.iter().find(|s| s.id.as_str() == id).map(|s| s.zone.number());
    assert_eq!(
        (zone_of("w"), zone_of("guandu-3")),
        (Some(7), Some(0)),
        "a zone read, an empty cell keeps the ledger's"
    );

    let responders =
        "id,name,station_id,phone,lat,lon,mode,skills,on_duty,provider_id\nr2,钱,guandu-3,,25,102.7,骑马,,,\n";
    let table = read_table(responders.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let report = run(&table, &Mapping::default_for(Kind::Responders), &ledger);
    assert_eq!(codes(&report), [(2, code::UNKNOWN_STATION), (2, code::BAD_VALUE)]);
}

#[test]
fn every_problem_code_is_documented() {
    let doc = include_str!("../../../docs/ledger-import.md");
    for c in code::ALL {
        assert!(doc.contains(&format!("`{c}`")), "docs/ledger-import.md explains {c}");
    }
}

#[test]
fn reimporting_the_same_file_changes_nothing() {
    let mut ledger = ledger();
    for bytes in [gbk_csv(&zh_elders_csv()), utf8_csv(&zh_elders_csv())] {
        let table = read_table(&bytes, Format::Csv, Encoding::Auto, None).unwrap();
        let first = run(&table, &zh_mapping(), &ledger);
        first.apply_to(&mut ledger);
        let again = run(&table, &zh_mapping(), &ledger);
        assert_eq!((again.new, again.changed, again.unchanged), (0, 0, 2), "{:?}", again.problems);
        assert_eq!(again.to_apply().count(), 0);
    }
    assert_eq!(ledger.elders.len(), 4);
    assert_eq!(ledger.check(), Ok(()));
}

#[test]
fn an_update_keeps_what_the_file_does_not_map() {
    let ledger = ledger();
    // The office's file knows e1's phone, address and first contact, nothing else.
    let csv = "编号,地址,联系电话,紧急联系人1,紧急联系人1电话\ne1,五华区华山南路 14 号,13800000009,李娜,13900003333\n";
    let table = read_table(csv.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let mapping = Mapping {
        kind: Kind::Elders,
        columns: [
            (Field::Id, "编号"),
            (Field::Address, "地址"),
            (Field::Phone, "联系电话"),
            (Field::Contact1Name, "紧急联系人1"),
            (Field::Contact1Phone, "紧急联系人1电话"),
        ]
        .into_iter()
        .map(|(f, h)| (f, h.to_string()))
        .collect(),
    };
    let report = run(&table, &mapping, &ledger);
    assert_eq!((report.new, report.changed), (0, 1), "{:?}", report.problems);
    let Entity::Elder(e1) = &report.rows[0].entity else { panic!("an elder") };
    let before = &ledger.elders[0];
    assert_eq!(e1.address, "五华区华山南路 14 号");
    assert_eq!(e1.phone.as_deref(), Some("13800000009"));
    assert_eq!((&e1.name, e1.home, &e1.notes), (&before.name, before.home, &before.notes));
    assert_eq!(e1.profile.conditions, before.profile.conditions);
    assert_eq!(e1.profile.id_number, before.profile.id_number);
    let (first, second) = (&e1.profile.contacts[0], &e1.profile.contacts[1]);
    assert_eq!(first.phone, "13900003333");
    assert_eq!((first.id.as_str(), first.relation.as_str(), first.device_news), ("daughter", "女儿", false));
    assert_eq!(second, &before.profile.contacts[1], "contact 2 is not mapped: kept");
    assert_eq!(e1.profile.station_id, before.profile.station_id);
}

#[test]
fn a_responders_live_position_and_duty_are_kept_unless_mapped() {
    let ledger = ledger();
    let csv = "id,name,station_id,phone,mode\nr1,赵敏,wuhua-1,13700000002,ebike\n";
    let table = read_table(csv.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let mut mapping = Mapping::default_for(Kind::Responders);
    mapping
        .columns
        .retain(|f, _| !matches!(f, Field::Lat | Field::Lon | Field::OnDuty | Field::Skills | Field::ProviderId));
    let report = run(&table, &mapping, &ledger);
    let Entity::Responder(r1) = &report.rows[0].entity else { panic!("a responder") };
    let before = &ledger.responders[0];
    assert_eq!(report.changed, 1);
    assert_eq!(r1.phone.as_deref(), Some("13700000002"));
    assert_eq!((r1.position, r1.position_at, r1.on_duty), (before.position, before.position_at, true));
    assert_eq!((&r1.skills, &r1.token_sha256), (&before.skills, &before.token_sha256));

    let moved = "id,name,station_id,lat,lon,on_duty\nr1,赵敏,wuhua-1,25.05,102.72,否\n";
    let table = read_table(moved.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let mut mapping = Mapping::default_for(Kind::Responders);
    mapping.columns.retain(|f, _| !matches!(f, Field::Phone | Field::Mode | Field::Skills | Field::ProviderId));
    let report = run(&table, &mapping, &ledger);
    let Entity::Responder(r1) = &report.rows[0].entity else { panic!("a responder") };
    assert_eq!((r1.position.lat(), r1.position_at, r1.on_duty), (25.05, None, false), "a base position, off duty");
}

#[test]
fn progress_climbs_to_the_total_reading_and_checking() {
    let mut csv = String::from("id,elder_id\n");
    for i in 0..2_500 {
        csv.push_str(&format!("d{i},e1\n"));
    }
    let mut table = read_table(csv.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let mapping = Mapping::default_for_file(Kind::Devices, &mut table);
    let mut seen = Vec::new();
    let report = check(&table, &mapping, &ledger(), &mut |done, total| seen.push((done, total))).unwrap();
    assert_eq!(report.new, 2_500);
    assert_eq!(seen, [(0, 2_500), (1_000, 2_500), (2_000, 2_500), (2_500, 2_500)]);
    let mut many = ledger();
    many.devices = (0..2_500)
        .map(|i| Device {
            id: DeviceId::parse(format!("d{i}")).unwrap(),
            elder_id: ElderId::parse("e1").unwrap(),
            model: None,
            sim: None,
        })
        .collect();
    for format in [Format::Csv, Format::Xlsx] {
        let bytes = export(&many, Kind::Devices, format, Encoding::Utf8).unwrap();
        let mut seen: Vec<(usize, usize)> = Vec::new();
        let table =
            read_table_with_progress(&bytes, format, Encoding::Auto, None, &mut |d, t| seen.push((d, t))).unwrap();
        assert_eq!(table.rows.len(), 2_500);
        assert!(seen.len() >= 3, "{format:?}: {seen:?}");
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].0 <= w[0].1), "{format:?}: {seen:?}");
        let (done, total) = *seen.last().unwrap();
        assert_eq!(done, total, "{format:?}: reading reports its end");
    }
    let mut empty = read_table(b"id,elder_id\n", Format::Csv, Encoding::Auto, None).unwrap();
    let mapping = Mapping::default_for_file(Kind::Devices, &mut empty);
    let mut last = None;
    check(&empty, &mapping, &ledger(), &mut |d, t| last = Some((d, t))).unwrap();
    assert_eq!(last, Some((0, 0)), "an empty file reports its end too");
}

#[test]
fn export_then_import_is_unchanged_for_every_kind_and_format() {
    let ledger = ledger();
    for kind in Kind::ALL {
        for (format, encoding) in
            [(Format::Csv, Encoding::Utf8), (Format::Csv, Encoding::Gbk), (Format::Xlsx, Encoding::Auto)]
        {
            let bytes = export(&ledger, kind, format, encoding).unwrap();
            if format == Format::Csv && encoding == Encoding::Utf8 {
                assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "Excel needs the mark to see UTF-8");
            }
            let table = read_table(&bytes, format, Encoding::Auto, None).unwrap();
            if format == Format::Csv && !bytes.is_ascii() {
                assert_eq!(table.encoding, Some(encoding), "{kind} {format:?} {encoding:?}");
            }
            let mapping = Mapping::default_for(kind);
            let expected: Vec<&str> = kind.fields().iter().map(|f| f.as_str()).collect();
            assert_eq!(table.headers, expected, "export writes the default mapping's headers");
            let report = run(&table, &mapping, &ledger);
            assert_eq!(report.problems, vec![], "{kind} {format:?} {encoding:?}");
            let count = match kind {
                Kind::Elders => ledger.elders.len(),
                Kind::Devices => ledger.devices.len(),
                Kind::Stations => ledger.stations.len(),
                Kind::Responders => ledger.responders.len(),
            };
            assert_eq!((report.unchanged, report.new, report.changed), (count, 0, 0), "{kind} {format:?} {encoding:?}");
            assert!(report.rows.iter().all(|r| r.status == Status::Unchanged));
        }
    }
}

#[test]
fn a_title_above_the_header_is_passed_over_when_the_mapping_finds_its_headers_lower_down() {
    use rust_xlsxwriter::Workbook;
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "五华区居家养老服务对象台账（2026 年 11 月）").unwrap();
    sheet.write_string(1, 0, "填报单位：华山街道").unwrap();
    for (col, h) in ["编号", "姓名", "地址", "经度", "纬度"].iter().enumerate() {
        sheet.write_string(2, col as u16, *h).unwrap();
    }
    for (col, v) in ["wh-3001", "段桂芬", "五华区华山西路 9 号"].iter().enumerate() {
        sheet.write_string(3, col as u16, *v).unwrap();
    }
    sheet.write_number(3, 3, 102.701).unwrap();
    sheet.write_number(3, 4, 25.043).unwrap();
    let bytes = book.save_to_buffer().unwrap();
    let mut table = read_table(&bytes, Format::Xlsx, Encoding::Auto, None).unwrap();
    assert_eq!(table.headers[0], "五华区居家养老服务对象台账（2026 年 11 月）");
    let mut mapping = zh_mapping();
    mapping
        .columns
        .retain(|f, _| matches!(f, Field::Id | Field::Name | Field::Address | Field::HomeLat | Field::HomeLon));
    assert!(mapping.check(&table).is_err());
    assert!(mapping.locate_header(&mut table));
    assert_eq!((table.header_row, table.rows.len(), table.rows[0].number()), (3, 1, 4));
    assert!(!mapping.locate_header(&mut table), "found already");
    let report = run(&table, &mapping, &ledger());
    assert_eq!((report.new, report.rows[0].row), (1, 4));
}

#[test]
fn the_programmes_schedule_and_a_devices_model_import_and_an_older_file_still_does() {
    let ledger = ledger();
    // A file with the programme's columns: e1 is called weekly and visited monthly, e2 taken
    // off the programme by empty cells; 0 and 400 days are refused.
    let csv = "id,name,address,home_lat,home_lon,call_every_days,visit_every_days\n\
               e1,张桂英,华山南路 1 号,25.04,102.71,7,30\n\
               e2,刘建国,华山南路 2 号,25.05,102.72,,\n\
               e3,王芳,华山南路 3 号,25.05,102.72,0,400\n";
    let mut table = read_table(csv.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let mapping = Mapping::default_for_file(Kind::Elders, &mut table);
    assert!(mapping.columns.contains_key(&Field::CallEveryDays));
    let report = check(&table, &mapping, &ledger, &mut |_, _| {}).unwrap();
    assert_eq!(codes(&report), [(4, code::BAD_NUMBER), (4, code::BAD_NUMBER)]);
    let schedule = |id: &str| {
        report
            .rows
            .iter()
            .find_map(|r| match &r.entity {
                Entity::Elder(e) if e.id.as_str() == id => Some(e.profile.schedule),
                _ => None,
            })
            .unwrap()
    };
    assert_eq!((schedule("e1").call_every_days, schedule("e1").visit_every_days), (Some(7), Some(30)));
    assert!(schedule("e2").is_empty());

    // A file written before those columns existed (no model for devices either) imports, and
    // keeps what the ledger has for the columns it lacks.
    let mut scheduled = ledger.clone();
    scheduled.elders[0].profile.schedule.call_every_days = Some(14);
    scheduled.devices.push(Device {
        id: DeviceId::parse("xs-0009").unwrap(),
        elder_id: ElderId::parse("e1").unwrap(),
        model: Some("watch-4g".into()),
        sim: None,
    });
    let old_elders = "id,name,address,home_lat,home_lon\ne1,张桂英,华山南路 1 号,25.04,102.71\n";
    let mut table = read_table(old_elders.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let report = run(&table.clone(), &Mapping::default_for_file(Kind::Elders, &mut table), &scheduled);
    let Entity::Elder(e1) = &report.rows[0].entity else { panic!("an elder") };
    assert_eq!(e1.profile.schedule.call_every_days, Some(14), "not in the file: kept");
    let old_devices = "id,elder_id\nxs-0009,e1\n";
    let mut table = read_table(old_devices.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let report = run(&table.clone(), &Mapping::default_for_file(Kind::Devices, &mut table), &scheduled);
    let Entity::Device(d) = &report.rows[0].entity else { panic!("a device") };
    assert_eq!((d.model.as_deref(), report.rows[0].status), (Some("watch-4g"), Status::Unchanged));
    // A model column sets it; an empty cell there is the default model.
    let with_model = "id,elder_id,model\nxs-0009,e1,band-2\nxs-0010,e1,\n";
    let mut table = read_table(with_model.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let report = run(&table.clone(), &Mapping::default_for_file(Kind::Devices, &mut table), &scheduled);
    let models: Vec<_> = report
        .rows
        .iter()
        .map(|r| match &r.entity {
            Entity::Device(d) => d.model.clone(),
            _ => panic!("a device"),
        })
        .collect();
    assert_eq!(models, [Some("band-2".to_string()), None]);
}

/// Each device's number, or the row's problem codes, in file order.
fn sims(report: &Report) -> Vec<(usize, Option<String>)> {
    report
        .rows
        .iter()
        .map(|r| match &r.entity {
            Entity::Device(d) => (r.row, d.sim.clone()),
            _ => panic!("a device"),
        })
        .collect()
}

#[test]
fn a_devices_sim_number_imports_as_written_and_exports_back() {
    let ledger = ledger();
    let csv = "id,elder_id,sim\nxs-0002,e2,13900000002\nxs-0003,e1,\nxs-0004,e1,+86 139-0000-0004\nxs-0005,e1,12345\n\
               xs-0006,e1,12345678901234567890\n";
    let mut table = read_table(csv.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let mapping = Mapping::default_for_file(Kind::Devices, &mut table);
    assert!(mapping.columns.contains_key(&Field::Sim));
    let report = run(&table, &mapping, &ledger);
    assert_eq!(report.problems, vec![]);
    assert_eq!(
        sims(&report),
        [
            (2, Some("13900000002".into())),
            (3, None),
            (4, Some("+86 139-0000-0004".into())),
            (5, Some("12345".into())),
            (6, Some("12345678901234567890".into())),
        ],
        "kept as written; an empty cell is no SIM"
    );

    // Out and back in: the number as written, in every format (the ledger's is
    // "+86 138-0000-5555"), and the same file again is unchanged.
    let mut both = ledger.clone();
    report.apply_to(&mut both);
    for (format, encoding) in
        [(Format::Csv, Encoding::Utf8), (Format::Csv, Encoding::Gbk), (Format::Xlsx, Encoding::Auto)]
    {
        let bytes = export(&both, Kind::Devices, format, encoding).unwrap();
        if format == Format::Csv {
            let text = String::from_utf8_lossy(&bytes);
            assert!(text.contains("\nxs-0001,e1,,+86 138-0000-5555\n"), "{text}");
        }
        let table = read_table(&bytes, format, Encoding::Auto, None).unwrap();
        let again = run(&table, &Mapping::default_for(Kind::Devices), &both);
        assert_eq!((again.unchanged, again.problems.len()), (6, 0), "{format:?} {encoding:?}: {:?}", again.problems);
        assert_eq!(sims(&again)[0].1.as_deref(), Some("+86 138-0000-5555"));
    }

    // An empty cell in a mapped column takes the number away; a new one replaces it.
    let csv = "id,elder_id,sim\nxs-0001,e1,\n";
    let mut table = read_table(csv.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let report = run(&table.clone(), &Mapping::default_for_file(Kind::Devices, &mut table), &ledger);
    assert_eq!((sims(&report), report.changed), (vec![(2, None)], 1));
}

#[test]
fn a_sim_number_that_is_not_a_phone_number_or_is_another_devices_is_refused() {
    let ledger = ledger(); // xs-0001's SIM is +86 138-0000-5555
    let csv = [
        "id,elder_id,sim",
        "xs-0002,e1,1234",                  // 2 bad_sim: four digits
        "xs-0003,e1,138 0000 abcd",         // 3 bad_sim: letters
        "xs-0004,e1,+86+13800000000",       // 4 bad_sim: a + inside
        "xs-0005,e1,123456789012345678901", // 5 bad_sim: 21 digits
        "xs-0006,e1,(0871) 6800 0001",      // 6 bad_sim: brackets
        "xs-0007,e1,13800005555",           // 7 duplicate_sim: xs-0001's in the ledger
        "xs-0008,e1,139-0000-0008",         // 8 fine
        "xs-0009,e1,+86 13900000008",       // 9 duplicate_sim: row 8's
        "xs-0010,e99,abc",                  // 10 unknown_elder and bad_sim
        "xs-0008,e1,13900000009",           // 11 duplicate_id
    ]
    .join("\n");
    let mut table = read_table(csv.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let report = run(&table.clone(), &Mapping::default_for_file(Kind::Devices, &mut table), &ledger);
    assert_eq!(
        codes(&report),
        [
            (2, code::BAD_SIM),
            (3, code::BAD_SIM),
            (4, code::BAD_SIM),
            (5, code::BAD_SIM),
            (6, code::BAD_SIM),
            (7, code::DUPLICATE_SIM),
            (9, code::DUPLICATE_SIM),
            (10, code::UNKNOWN_ELDER),
            (10, code::BAD_SIM),
            (11, code::DUPLICATE_ID),
        ]
    );
    assert_eq!(sims(&report), [(8, Some("139-0000-0008".into()))]);
    for p in &report.problems {
        assert!(!p.message.is_empty() && !p.message_zh.is_empty(), "{p:?} says what is wrong in both languages");
    }
    let bad = &report.problems[0];
    assert_eq!(bad.column.as_deref(), Some("sim"));
    assert!(bad.message.contains("1234") && bad.message.contains("5 to 20 digits"), "{}", bad.message);
    let ledgers = &report.problems[5];
    assert!(ledgers.message.contains("xs-0001") && ledgers.message.contains("the ledger"), "{}", ledgers.message);
    assert!(ledgers.message_zh.contains("xs-0001") && ledgers.message_zh.contains("台账"), "{}", ledgers.message_zh);
    let rows = &report.problems[6];
    assert!(rows.message.contains("xs-0008") && rows.message.contains("row 8"), "{}", rows.message);
}

#[test]
fn a_file_may_move_a_sim_number_between_the_devices_it_gives_numbers_for() {
    let ledger = ledger();
    // xs-0001 gets a new number and xs-0002 takes its old one: the ledger's number for
    // xs-0001 no longer counts, whichever row comes first.
    let csv = "id,elder_id,sim\nxs-0002,e2,13800005555\nxs-0001,e1,13900000001\n";
    let mut table = read_table(csv.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let report = run(&table.clone(), &Mapping::default_for_file(Kind::Devices, &mut table), &ledger);
    assert_eq!(report.problems, vec![]);
    assert_eq!(sims(&report), [(2, Some("13800005555".into())), (3, Some("13900000001".into()))]);
    // The same number again on its own device is no duplicate.
    let csv = "id,elder_id,sim\nxs-0001,e1,+86 138-0000-5555\n";
    let mut table = read_table(csv.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let report = run(&table.clone(), &Mapping::default_for_file(Kind::Devices, &mut table), &ledger);
    assert_eq!((report.unchanged, report.problems.len()), (1, 0));
}

#[test]
fn an_older_devices_file_without_a_sim_column_keeps_the_ledgers_numbers() {
    let ledger = ledger();
    let old = "id,elder_id,model\nxs-0001,e2,watch-4g\nxs-0002,e1,\n";
    let mut table = read_table(old.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let mapping = Mapping::default_for_file(Kind::Devices, &mut table);
    assert!(!mapping.columns.contains_key(&Field::Sim));
    let report = run(&table, &mapping, &ledger);
    assert_eq!(report.problems, vec![]);
    assert_eq!(sims(&report), [(2, Some("+86 138-0000-5555".into())), (3, None)], "not in the file: kept");
    assert_eq!((report.changed, report.new), (1, 1), "xs-0001 changed elder and model only");
}

#[test]
fn a_responders_provider_and_an_elders_need_level_import_are_checked_and_export_back() {
    use anxin_core::ids::ProviderId;
    use anxin_core::service::{Provider, ProviderOffer, ServiceArea};
    let mut ledger = ledger();
    ledger.providers.push(Provider {
        id: ProviderId::parse("p-jiazheng").unwrap(),
        name: "五华家政服务中心".into(),
        phone: Some("0871-68000009".into()),
        offers: vec![ProviderOffer { category: "cleaning".into(), price_fen: 6_000, daily_capacity: 20 }],
        area: ServiceArea::Stations { stations: vec![StationId::parse("wuhua-1").unwrap()] },
        hours: Default::default(),
    });

    // Responders: r1 becomes a service worker, r2 joins as one, r3 names a provider nobody
    // entered, r4 a provider id the ledger's rules refuse.
    let csv = "id,name,station_id,lat,lon,provider_id\n\
               r1,赵敏,wuhua-1,25.041,102.712,p-jiazheng\n\
               r2,孙丽,wuhua-1,25.042,102.713,p-jiazheng\n\
               r3,周强,wuhua-1,25.043,102.714,p-nobody\n\
               r4,吴刚,wuhua-1,25.044,102.715,p 1\n";
    let mut table = read_table(csv.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let mapping = Mapping::default_for_file(Kind::Responders, &mut table);
    assert!(mapping.columns.contains_key(&Field::ProviderId), "provider_id is a default column");
    let report = run(&table, &mapping, &ledger);
    assert_eq!(codes(&report), [(4, code::UNKNOWN_PROVIDER), (5, code::BAD_ID)]);
    assert!(report.problems[0].message.contains("provider \"p-nobody\" is not in the ledger"));
    assert_eq!(report.problems[0].column.as_deref(), Some("provider_id"));
    let providers: Vec<_> = report
        .rows
        .iter()
        .map(|r| match &r.entity {
            Entity::Responder(x) => (x.id.as_str().to_string(), x.provider_id.as_ref().map(|p| p.as_str().to_string())),
            _ => panic!("a responder"),
        })
        .collect();
    let jiazheng = Some("p-jiazheng".to_string());
    assert_eq!(providers, [("r1".into(), jiazheng.clone()), ("r2".into(), jiazheng.clone())]);
    assert_eq!((report.changed, report.new), (1, 1));

    // Elders: a level of need 1 to 9; an empty cell clears it; 0, 12 and words are refused.
    let csv = "id,name,address,home_lat,home_lon,need_level\n\
               e1,王秀英,华山南路 12 号,25.0405,102.7102,2\n\
               e2,张建国,北京路 88 号,25.071,102.731,\n\
               e3,李芳,北京路 90 号,25.071,102.731,0\n\
               e4,赵军,北京路 92 号,25.071,102.731,12\n\
               e5,钱梅,北京路 94 号,25.071,102.731,一级\n";
    let mut table = read_table(csv.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let mapping = Mapping::default_for_file(Kind::Elders, &mut table);
    let report = run(&table, &mapping, &ledger);
    assert_eq!(codes(&report), [(4, code::BAD_NUMBER), (5, code::BAD_NUMBER), (6, code::BAD_NUMBER)]);
    assert!(report.problems[1].message.contains("need_level \"12\" is outside 1 to 9"), "{:?}", report.problems[1]);
    let levels: Vec<_> = report
        .rows
        .iter()
        .map(|r| match &r.entity {
            Entity::Elder(e) => e.profile.need_level,
            _ => panic!("an elder"),
        })
        .collect();
    assert_eq!(levels, [Some(2), None]);

    // Applied, exported and read back: unchanged; a file without the columns keeps them.
    let mut applied = ledger.clone();
    applied.elders[0].profile.need_level = Some(2);
    applied.responders[0].provider_id = ProviderId::parse("p-jiazheng").ok();
    for kind in [Kind::Elders, Kind::Responders] {
        let bytes = export(&applied, kind, Format::Csv, Encoding::Gbk).unwrap();
        let table = read_table(&bytes, Format::Csv, Encoding::Auto, None).unwrap();
        let report = run(&table, &Mapping::default_for(kind), &applied);
        assert_eq!((report.problems.len(), report.changed, report.new), (0, 0, 0), "{kind}");
    }
    let old = "id,name,station_id,lat,lon\nr1,赵敏,wuhua-1,25.041,102.712\n";
    let mut table = read_table(old.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let report = run(&table.clone(), &Mapping::default_for_file(Kind::Responders, &mut table), &applied);
    let Entity::Responder(r1) = &report.rows[0].entity else { panic!("a responder") };
    assert_eq!(r1.provider_id.as_ref().map(|p| p.as_str()), Some("p-jiazheng"), "not in the file: kept");
    // Mapped and empty: no longer a service worker.
    let off = "id,name,station_id,lat,lon,provider_id\nr1,赵敏,wuhua-1,25.041,102.712,\n";
    let mut table = read_table(off.as_bytes(), Format::Csv, Encoding::Auto, None).unwrap();
    let report = run(&table.clone(), &Mapping::default_for_file(Kind::Responders, &mut table), &applied);
    let Entity::Responder(r1) = &report.rows[0].entity else { panic!("a responder") };
    assert_eq!(r1.provider_id, None);
}
